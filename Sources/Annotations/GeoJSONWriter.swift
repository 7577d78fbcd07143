import Foundation

/// A class's display colour, as QuPath's `classification.color` holds it.
public struct ClassColour: Equatable, Sendable {
    public var red: UInt8, green: UInt8, blue: UInt8
    public init(_ red: UInt8, _ green: UInt8, _ blue: UInt8) { (self.red, self.green, self.blue) = (red, green, blue) }
}

/// An object to export: a region, with QuPath's object type, class and measurements.
public struct ExportedObject: Sendable {
    public var polygons: [Polygon]
    public var objectType: QuPathObjectType
    public var className: String?
    public var colour: ClassColour?
    public var name: String?
    public var measurements: [(name: String, value: Double)]

    public init(polygons: [Polygon], objectType: QuPathObjectType, className: String? = nil, colour: ClassColour? = nil, name: String? = nil,
                measurements: [(name: String, value: Double)] = []) {
        self.polygons = polygons
        self.objectType = objectType
        self.className = className
        self.colour = colour
        self.name = name
        self.measurements = measurements
    }

    /// A level-0 rectangle (a tile) as a one-polygon object.
    public static func rectangle(x: Double, y: Double, width: Double, height: Double) -> [Polygon] {
        [Polygon(exterior: [Point(x, y), Point(x + width, y), Point(x + width, y + height), Point(x, y + height)])]
    }
}

/// GeoJSON as QuPath's "Import objects" and Python's json/shapely/geopandas read it: a
/// QuPath's `objectType`: what an object becomes when QuPath imports it.
public enum QuPathObjectType: String, CaseIterable, Sendable {
    case tile, detection, annotation
}

/// FeatureCollection of Polygon/MultiPolygon features in level-0 pixels, each with `objectType`,
/// `classification {name, color}` and a `measurements` map.
public enum GeoJSONWriter {
    /// `source` names what the objects come from (a slide): ids are UUIDs derived from it and
    /// each object's position in the list, so exporting again gives the same ids and QuPath, which
    /// keys objects by UUID, does not see the objects as new ones.
    public static func encode(_ objects: [ExportedObject], source: String) throws -> Data {
        var text = "{\"type\":\"FeatureCollection\",\"features\":["
        for (index, object) in objects.enumerated() {
            if index > 0 { text += ",\n" }
            text += feature(object, id: uuid(source, index))
        }
        text += "]}\n"
        return Data(text.utf8)
    }

    /// Features are written by hand: tens of thousands of tiles through JSONSerialization cost
    /// seconds and lose the fixed key order QuPath writes.
    static func feature(_ object: ExportedObject, id: String) -> String {
        func number(_ v: Double) -> String { v.isFinite ? (v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(format: "%.10g", v)) : "null" }
        func ring(_ points: [Point]) -> String {
            "[" + (points + points.prefix(1)).map { "[\(number($0.x)),\(number($0.y))]" }.joined(separator: ",") + "]"
        }
        func polygon(_ p: Polygon) -> String { "[" + ([p.exterior] + p.holes).map(ring).joined(separator: ",") + "]" }
        let geometry = object.polygons.count == 1
            ? "{\"type\":\"Polygon\",\"coordinates\":\(polygon(object.polygons[0]))}"
            : "{\"type\":\"MultiPolygon\",\"coordinates\":[\(object.polygons.map(polygon).joined(separator: ","))]}"
        var properties = ["\"objectType\":\(quoted(object.objectType.rawValue))"]
        if let name = object.name { properties.append("\"name\":\(quoted(name))") }
        if let className = object.className {
            let colour = object.colour.map { ",\"color\":[\($0.red),\($0.green),\($0.blue)]" } ?? ""
            properties.append("\"classification\":{\"name\":\(quoted(className))\(colour)}")
        }
        if !object.measurements.isEmpty {
            properties.append("\"measurements\":{" + object.measurements.map { "\(quoted($0.name)):\(number($0.value))" }.joined(separator: ",") + "}")
        }
        return "{\"type\":\"Feature\",\"id\":\"\(id)\",\"geometry\":\(geometry),\"properties\":{\(properties.joined(separator: ","))}}"
    }

    /// A version-4-shaped UUID from two 64-bit FNV-1a hashes of `source` and `index`: stable across
    /// runs, distinct across objects and slides (no cryptographic claim is needed here).
    static func uuid(_ source: String, _ index: Int) -> String {
        func fnv(_ text: String, basis: UInt64) -> UInt64 {
            text.utf8.reduce(basis) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        }
        let key = source + "\u{0}" + String(index)
        let high = fnv(key, basis: 0xcbf2_9ce4_8422_2325), low = fnv(key + "\u{1}", basis: 0x8422_2325_cbf2_9ce4)
        let version = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
        let variant = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        let hex = String(format: "%016llx%016llx", version, variant)
        let characters = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }.joined(separator: "-")
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}
