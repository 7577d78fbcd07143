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

    public static func read(path: String) throws -> [Annotation] {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let size = (attributes?[.size] as? NSNumber)?.intValue else {
            throw AnnotationError.unreadable(path: path, reason: "no such file")
        }
        guard size <= maximumBytes else { throw AnnotationError.unreadable(path: path, reason: "\(size) bytes is more than the \(maximumBytes >> 20) MiB allowed") }
        guard let data = FileManager.default.contents(atPath: path) else { throw AnnotationError.unreadable(path: path, reason: "cannot read") }
        let root: Any
        do { root = try JSONText.object(from: data) } catch {
            throw AnnotationError.unreadable(path: path, reason: "not JSON: \(error)")
        }
        let features: [Any]
        if let array = root as? [Any] {
            features = array
        } else if let object = root as? [String: Any], object["type"] as? String == "FeatureCollection" {
            guard let list = object["features"] as? [Any] else { throw AnnotationError.unreadable(path: path, reason: "a FeatureCollection without a 'features' list") }
            features = list
        } else if let object = root as? [String: Any], object["type"] as? String == "Feature" {
            features = [object]
        } else {
            throw AnnotationError.unreadable(path: path, reason: "expected a FeatureCollection, a list of Features or one Feature, found \(JSONText.kind(of: root))")
        }
        return try features.enumerated().map { index, value in try feature(value, index: index, path: path) }
    }

    static func feature(_ value: Any, index: Int, path: String) throws -> Annotation {
        func fail(_ reason: String) -> AnnotationError { .feature(path: path, index: index, reason: reason) }
        guard let object = value as? [String: Any], object["type"] as? String == "Feature" else { throw fail("not a GeoJSON Feature") }
        guard let geometry = object["geometry"] as? [String: Any], let type = geometry["type"] as? String else { throw fail("no geometry") }
        let properties = object["properties"] as? [String: Any] ?? [:]
        let classification = properties["classification"] as? [String: Any]
        let className = (classification?["name"] as? String) ?? (properties["classification"] as? String)
        let objectType = properties["objectType"] as? String ?? "annotation"
        let coordinates = geometry["coordinates"]
        let polygonCoordinates: [Any]
        switch type {
        case "Polygon": polygonCoordinates = [coordinates as Any]
        case "MultiPolygon":
            guard let list = coordinates as? [Any] else { throw fail("MultiPolygon coordinates are not a list") }
            polygonCoordinates = list
        default:
            throw fail("\(type) geometries have no area; only Polygon and MultiPolygon label tiles (convert lines and points in QuPath)")
        }
        let polygons = try polygonCoordinates.enumerated().map { p, rings in
            guard let rings = rings as? [Any], !rings.isEmpty else { throw fail("polygon \(p) has no rings") }
            let parsed = try rings.enumerated().map { r, ring in try self.ring(ring, fail: { fail("polygon \(p), ring \(r): \($0)") }) }
            for (r, ring) in parsed.enumerated() {
                if let (i, j) = selfIntersection(ring) {
                    throw fail("polygon \(p), ring \(r) crosses itself (edges \(i) and \(j)); fix it in QuPath (Objects › Simplify or redraw)")
                }
            }
            return Polygon(exterior: parsed[0], holes: Array(parsed.dropFirst()))
        }
        return Annotation(polygons: polygons, className: className, objectType: objectType, index: index)
    }

    /// A ring of [x, y] pairs; the closing point and repeated points are dropped.
    static func ring(_ value: Any, fail: (String) -> AnnotationError) throws -> [Point] {
        guard let pairs = value as? [Any] else { throw fail("not a list of points") }
        var points: [Point] = []
        for pair in pairs {
            guard let xy = pair as? [Any], xy.count >= 2, let x = (xy[0] as? NSNumber)?.doubleValue, let y = (xy[1] as? NSNumber)?.doubleValue,
                  x.isFinite, y.isFinite else {
                throw fail("a point is not a pair of numbers")
            }
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
