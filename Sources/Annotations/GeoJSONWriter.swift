import Foundation

/// An object to export: a region, with QuPath's object type, class and measurements.
public struct ExportedObject: Sendable {
    public var polygons: [Polygon]
    /// QuPath's `objectType`: `annotation`, `detection` or `tile`.
    public var objectType: String
    public var className: String?
    public var colour: (UInt8, UInt8, UInt8)?
    public var name: String?
    public var measurements: [(name: String, value: Double)]

    public init(polygons: [Polygon], objectType: String, className: String? = nil, colour: (UInt8, UInt8, UInt8)? = nil, name: String? = nil,
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
/// FeatureCollection of Polygon/MultiPolygon features in level-0 pixels, each with `objectType`,
/// `classification {name, color}` and a `measurements` map.
public enum GeoJSONWriter {
    public static func encode(_ objects: [ExportedObject]) throws -> Data {
        var text = "{\"type\":\"FeatureCollection\",\"features\":["
        for (index, object) in objects.enumerated() {
            if index > 0 { text += ",\n" }
            text += feature(object, id: index)
        }
        text += "]}\n"
        return Data(text.utf8)
    }

    /// Features are written by hand: tens of thousands of tiles through JSONSerialization cost
    /// seconds and lose the fixed key order QuPath writes.
    static func feature(_ object: ExportedObject, id: Int) -> String {
        func number(_ v: Double) -> String { v.isFinite ? (v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(format: "%.10g", v)) : "null" }
        func ring(_ points: [Point]) -> String {
            "[" + (points + points.prefix(1)).map { "[\(number($0.x)),\(number($0.y))]" }.joined(separator: ",") + "]"
        }
        func polygon(_ p: Polygon) -> String { "[" + ([p.exterior] + p.holes).map(ring).joined(separator: ",") + "]" }
        let geometry = object.polygons.count == 1
            ? "{\"type\":\"Polygon\",\"coordinates\":\(polygon(object.polygons[0]))}"
            : "{\"type\":\"MultiPolygon\",\"coordinates\":[\(object.polygons.map(polygon).joined(separator: ","))]}"
        var properties = ["\"objectType\":\(quoted(object.objectType))"]
        if let name = object.name { properties.append("\"name\":\(quoted(name))") }
        if let className = object.className {
            let colour = object.colour.map { ",\"color\":[\($0.0),\($0.1),\($0.2)]" } ?? ""
            properties.append("\"classification\":{\"name\":\(quoted(className))\(colour)}")
        }
        if !object.measurements.isEmpty {
            properties.append("\"measurements\":{" + object.measurements.map { "\(quoted($0.name)):\(number($0.value))" }.joined(separator: ",") + "}")
        }
        return "{\"type\":\"Feature\",\"id\":\"\(id)\",\"geometry\":\(geometry),\"properties\":{\(properties.joined(separator: ","))}}"
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
