import Foundation
import Storage

public enum AnnotationError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case feature(path: String, index: Int, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): \(reason)"
        case let .feature(path, index, reason): return "\(path): feature \(index): \(reason)"
        }
    }
}

/// One drawn region: its polygons (a MultiPolygon has several) and QuPath's class.
public struct Annotation: Equatable, Sendable {
    public var polygons: [Polygon]
    /// `properties.classification.name`; nil for an unclassified annotation.
    public var className: String?
    /// `properties.classification.color` ([r, g, b], or QuPath 0.2's packed `colorRGB`).
    public var colour: ClassColour?
    /// QuPath's `objectType` (annotation, detection, tile, …).
    public var objectType: String
    /// Position in the file, for messages.
    public var index: Int

    public var bounds: Rect {
        polygons.dropFirst().reduce(polygons.first?.bounds ?? Rect(x: 0, y: 0, width: 0, height: 0)) { box, polygon in
            let b = polygon.bounds
            return Rect(x: min(box.minX, b.minX), y: min(box.minY, b.minY), width: max(box.maxX, b.maxX) - min(box.minX, b.minX),
                        height: max(box.maxY, b.maxY) - min(box.minY, b.minY))
        }
    }

    public func area(inside rect: Rect) -> Double { polygons.map { $0.area(inside: rect) }.reduce(0, +) }
}

/// Reads GeoJSON as QuPath exports it: a FeatureCollection, a bare array of Features, or one
/// Feature; Polygon and MultiPolygon geometries with holes, coordinates in level-0 pixels.
public enum GeoJSONReader {
    /// Files larger than this are refused before parsing (a whole-slide cell segmentation can
    /// reach hundreds of MB; annotations drawn by hand are far smaller).
    public static let maximumBytes = 512 << 20
    /// Level-0 pixels: the largest slides are a few hundred thousand pixels wide.
    public static let maximumCoordinate = 1e9

    /// More classes than this in one file is refused: tile outputs store the class list in an
    /// HDF5 attribute (64 KiB at most), and no slide is labelled with hundreds of classes.
    public static let maximumClasses = 500
    public static let maximumClassNameLength = 100

    /// What a file holds, and what was accepted with a remark (unclassified features).
    public struct Contents: Sendable {
        public var annotations: [Annotation]
        public var warnings: [String]
    }

    /// Reads the features one at a time (peak memory a few times the file, not Foundation's
    /// ~30×: QuPath's cell detections run to hundreds of MB).
    public static func read(path: String) throws -> Contents {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let size = (attributes?[.size] as? NSNumber)?.intValue else {
            throw AnnotationError.unreadable(path: path, reason: "no such file")
        }
        guard size <= maximumBytes else { throw AnnotationError.unreadable(path: path, reason: "\(size) bytes is more than the \(maximumBytes >> 20) MiB allowed") }
        guard let data = FileManager.default.contents(atPath: path) else { throw AnnotationError.unreadable(path: path, reason: "cannot read") }
        var cursor: JSONCursor
        do { cursor = try JSONCursor(checking: data) } catch {
            throw AnnotationError.unreadable(path: path, reason: "not JSON: \(error)")
        }
        var annotations: [Annotation] = []
        func take(_ index: Int, _ cursor: inout JSONCursor) throws {
            let (members, coordinates) = readFeature(&cursor)
            annotations.append(try feature(members, coordinates: coordinates, index: index, path: path))
        }
        if cursor.isArray() {
            try cursor.forEachElement(take)
        } else if cursor.isObject() {
            var members: [String: JSONValue] = [:]
            var coordinates: Coordinates?
            var listed = false
            try cursor.forEachMember { key, cursor in
                switch key {
                case "features" where cursor.isArray():
                    listed = true
                    try cursor.forEachElement(take)
                case "geometry" where cursor.isObject(): (members[key], coordinates) = readGeometry(&cursor)
                default: members[key] = cursor.value()
                }
            }
            try checkCoordinateSystem(members["crs"], path: path)
            switch members["type"]?.stringValue {
            case "FeatureCollection" where listed: break
            case "FeatureCollection": throw AnnotationError.unreadable(path: path, reason: "a FeatureCollection without a 'features' list")
            case "Feature" where !listed: annotations = [try feature(.object(members), coordinates: coordinates, index: 0, path: path)]
            default: throw AnnotationError.unreadable(path: path, reason: "expected a FeatureCollection, a list of Features or one Feature")
            }
        } else {
            throw AnnotationError.unreadable(path: path, reason: "expected a FeatureCollection, a list of Features or one Feature, found \(cursor.value().kind)")
        }
        let classes = Set(annotations.compactMap(\.className))
        guard classes.count <= maximumClasses else {
            throw AnnotationError.unreadable(path: path, reason: "\(classes.count) classes; at most \(maximumClasses) are supported in one file")
        }
        let unclassified = annotations.filter { $0.className == nil }.count
        let warnings = unclassified == 0 ? [] : ["\(path): \(unclassified) of \(annotations.count) features have no classification and label no tiles"]
        return Contents(annotations: annotations, warnings: warnings)
    }

    /// GeoJSON's default frame is longitude and latitude; a slide's annotations are level-0
    /// pixels and carry no `crs` (QuPath writes none). Any other declared frame is refused.
    static func checkCoordinateSystem(_ crs: JSONValue?, path: String) throws {
        guard let crs, crs != .null else { return }
        let name = crs["properties"]?["name"]?.stringValue ?? crs.stringValue ?? "(unnamed)"
        guard name.lowercased().contains("pixel") || name.lowercased().contains("image") else {
            throw AnnotationError.unreadable(path: path, reason: "declares the coordinate system '\(name)'; slide annotations are level-0 pixels "
                                             + "with no crs (export them from QuPath)")
        }
    }

    /// A feature's members, its geometry's positions read apart as points.
    static func readFeature(_ cursor: inout JSONCursor) -> (JSONValue, Coordinates?) {
        guard cursor.isObject() else { return (cursor.value(), nil) }
        var members: [String: JSONValue] = [:]
        var coordinates: Coordinates?
        cursor.forEachMember { key, cursor in
            if key == "geometry", cursor.isObject() { (members[key], coordinates) = readGeometry(&cursor) } else { members[key] = cursor.value() }
        }
        return (.object(members), coordinates)
    }

    static func readGeometry(_ cursor: inout JSONCursor) -> (JSONValue, Coordinates?) {
        var members: [String: JSONValue] = [:]
        var coordinates: Coordinates?
        cursor.forEachMember { key, cursor in
            if key == "coordinates" { coordinates = Coordinates.read(&cursor) } else { members[key] = cursor.value() }
        }
        return (.object(members), coordinates)
    }

    static func feature(_ value: JSONValue, coordinates: Coordinates?, index: Int, path: String) throws -> Annotation {
        func fail(_ reason: String) -> AnnotationError { .feature(path: path, index: index, reason: reason) }
        guard let object = value.objectValue, object["type"]?.stringValue == "Feature" else { throw fail("not a GeoJSON Feature") }
        guard let geometry = object["geometry"], let type = geometry["type"]?.stringValue else { throw fail("no geometry") }
        let properties = object["properties"]
        let classification = properties?["classification"]
        let className = classification?["name"]?.stringValue ?? classification?.stringValue
        if let className {
            guard !className.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw fail("an empty class name: name the class in QuPath, or remove the classification")
            }
            guard className.count <= maximumClassNameLength else { throw fail("a class name longer than \(maximumClassNameLength) characters") }
        }
        let objectType = properties?["objectType"]?.stringValue ?? "annotation"
        let colour = classColour(classification)
        let polygonCoordinates: [Coordinates]
        switch type {
        case "Polygon": polygonCoordinates = [coordinates ?? .other("nothing")]
        case "MultiPolygon":
            guard case let .list(list) = coordinates else { throw fail("MultiPolygon coordinates are not a list") }
            polygonCoordinates = list
        default:
            throw fail("\(type) geometries have no area; only Polygon and MultiPolygon label tiles (convert lines and points in QuPath)")
        }
        let polygons = try polygonCoordinates.enumerated().map { p, rings in
            guard case let .list(rings) = rings, !rings.isEmpty else { throw fail("polygon \(p) has no rings") }
            let parsed = try rings.enumerated().map { r, ring in try self.ring(ring, fail: { fail("polygon \(p), ring \(r): \($0)") }) }
            for (r, ring) in parsed.enumerated() {
                if let (i, j) = selfIntersection(ring) {
                    throw fail("polygon \(p), ring \(r) crosses itself (edges \(i) and \(j)); fix it in QuPath (Objects › Simplify or redraw)")
                }
                guard signedArea(ring) != 0 else { throw fail("polygon \(p), ring \(r) has no area (its points lie on one line)") }
            }
            let exterior = parsed[0]
            for (r, hole) in parsed.enumerated().dropFirst() {
                guard hole.allSatisfy({ isInsideOrOn($0, exterior) }) else {
                    throw fail("polygon \(p), ring \(r) is a hole outside its outer ring; holes must lie inside it")
                }
                guard abs(signedArea(hole)) < abs(signedArea(exterior)) else {
                    throw fail("polygon \(p), ring \(r) is a hole as large as its outer ring, leaving no area")
                }
            }
            return Polygon(exterior: exterior, holes: Array(parsed.dropFirst()))
        }
        return Annotation(polygons: polygons, className: className, colour: colour, objectType: objectType, index: index)
    }

    static func classColour(_ classification: JSONValue?) -> ClassColour? {
        func byte(_ value: Double) -> UInt8 { UInt8(max(0, min(255, value.isFinite ? value.rounded() : 0))) }
        if let rgb = classification?["color"]?.arrayValue?.compactMap(\.numberValue), rgb.count >= 3 {
            return ClassColour(byte(rgb[0]), byte(rgb[1]), byte(rgb[2]))
        }
        if let packed = classification?["colorRGB"]?.numberValue, packed.isFinite, abs(packed) < 1e12 {
            let value = Int64(packed) & 0xFFFFFF
            return ClassColour(UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF))
        }
        return nil
    }

    /// A ring of [x, y] pairs; the closing point and repeated points are dropped.
    static func ring(_ value: Coordinates, fail: (String) -> AnnotationError) throws -> [Point] {
        let positions: [Point]
        switch value {
        case let .ring(read): positions = read
        case .list: throw fail("not a list of points")
        case .other: throw fail("a point is not a pair of numbers")
        }
        var points: [Point] = []
        points.reserveCapacity(positions.count)
        for position in positions {
            let (x, y) = (position.x, position.y)
            guard x.isFinite, y.isFinite else { throw fail("a point is not a pair of numbers") }
            // Far past any slide, and past what later integer arithmetic on pixels can hold.
            guard abs(x) <= maximumCoordinate, abs(y) <= maximumCoordinate else {
                throw fail("the point (\(x), \(y)) is not a pixel position on a slide (coordinates are level-0 pixels, at most \(Int(maximumCoordinate)))")
            }
            let point = Point(x, y)
            if points.last != point { points.append(point) }
        }
        if points.count > 1, points.first == points.last { points.removeLast() }
        guard points.count >= 3 else { throw fail("fewer than 3 distinct points") }
        return points
    }
}

/// GeoJSON `coordinates` read straight into points (a 2,000,000-vertex ring as a tree of JSON
/// values would take ~10× its text).
enum Coordinates {
    /// A list of positions (each a list of two or more numbers; the first two are x and y).
    case ring([Point])
    /// A list of lists: rings, or polygons.
    case list([Coordinates])
    /// Anything else, said in JSON's words.
    case other(String)

    static func read(_ cursor: inout JSONCursor) -> Coordinates {
        guard cursor.isArray() else { return .other(cursor.value().kind) }
        var points: [Point] = [], lists: [Coordinates] = [], malformed = false
        cursor.forEachElement { _, cursor in
            if let numbers = cursor.numbers() {
                if numbers.count >= 2 { points.append(Point(numbers[0], numbers[1])) } else { malformed = true }
            } else {
                lists.append(read(&cursor))
            }
        }
        if malformed || (!points.isEmpty && !lists.isEmpty) { return .other("a list mixing points and other values") }
        return lists.isEmpty ? .ring(points) : .list(lists)
    }
}
