import Foundation

/// The annotations of one slide, ready to label tiles.
public struct AnnotationSet: Sendable {
    public let path: String
    public let annotations: [Annotation]
    /// What the file was accepted with (unclassified features), to be said once per slide.
    public let warnings: [String]
    /// Annotations by the `cell`-sized squares their bounds touch, so a tile looks only at the
    /// few near it (hundreds of regions would otherwise be tested for every grid position).
    private let buckets: [Int64: [Int]]
    private static let cell = 1024.0

    public init(path: String, annotations: [Annotation], warnings: [String] = []) {
        self.path = path
        self.annotations = annotations
        self.warnings = warnings
        var buckets: [Int64: [Int]] = [:]
        for (index, annotation) in annotations.enumerated() where annotation.className != nil {
            for key in Self.keys(annotation.bounds) { buckets[key, default: []].append(index) }
        }
        self.buckets = buckets
    }

    private static func keys(_ box: Rect) -> [Int64] {
        let c0 = Int64((box.minX / cell).rounded(.down)), c1 = Int64((box.maxX / cell).rounded(.down))
        let r0 = Int64((box.minY / cell).rounded(.down)), r1 = Int64((box.maxY / cell).rounded(.down))
        guard c1 - c0 < 4096, r1 - r0 < 4096 else { return [Int64.min] }  // an absurd extent: one shared bucket
        return (r0...r1).flatMap { r in (c0...c1).map { (r << 32) ^ ($0 & 0xFFFF_FFFF) } }
    }

    public static func read(path: String) throws -> AnnotationSet {
        let contents = try GeoJSONReader.read(path: path)
        return AnnotationSet(path: path, annotations: contents.annotations, warnings: contents.warnings)
    }

    /// Each class's colour as the file gives it (the first annotation of the class that has one).
    public var classColours: [String: ClassColour] {
        var colours: [String: ClassColour] = [:]
        for annotation in annotations {
            if let name = annotation.className, let colour = annotation.colour, colours[name] == nil { colours[name] = colour }
        }
        return colours
    }

    /// Names of the classes drawn, sorted.
    public var classNames: [String] { Array(Set(annotations.compactMap(\.className))).sorted() }

    /// Refuses annotations that reach outside a slide of `width` × `height` level-0 pixels, which
    /// come from another image or another coordinate frame.
    public func check(width: Int, height: Int) throws {
        let slack = 1.0  // QuPath may place a vertex on the far edge
        for annotation in annotations {
            let b = annotation.bounds
            if b.minX < -slack || b.minY < -slack || b.maxX > Double(width) + slack || b.maxY > Double(height) + slack {
                throw AnnotationError.feature(path: path, index: annotation.index, reason: String(
                    format: "reaches (%.6g, %.6g)–(%.6g, %.6g), outside the slide's %d × %d level-0 pixels; was it drawn on another image?",
                    b.minX, b.minY, b.maxX, b.maxY, width, height))
            }
        }
    }

    /// The fraction of `rect` each class covers (annotations of one class overlapping each other
    /// count once at most: the sum is clamped to 1).
    public func coverage(of rect: Rect) -> [String: Double] {
        var areas: [String: Double] = [:]
        var seen = Set<Int>()
        for key in Self.keys(rect) + [Int64.min] {
            for index in buckets[key] ?? [] where seen.insert(index).inserted {
                let annotation = annotations[index]
                guard let name = annotation.className, annotation.bounds.intersects(rect) else { continue }
                areas[name, default: 0] += annotation.area(inside: rect)
            }
        }
        return areas.mapValues { min(1, $0 / rect.area) }
    }

    /// The file among `files` (GeoJSON, `.json`) that belongs to a slide: named after the slide's
    /// file with or without its extension (`CMU-1.geojson`, `CMU-1.svs.geojson`). Two such
    /// files are refused: which one is meant cannot be guessed.
    public static func file(for slide: String, among files: [String]) throws -> String? {
        let matches = files.filter { belongs($0, to: slide) }
        guard matches.count <= 1 else {
            throw AnnotationError.unreadable(path: matches[0], reason: "\(matches.count) annotation files belong to \(URL(fileURLWithPath: slide).lastPathComponent) ("
                                             + matches.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", ") + "); keep one")
        }
        return matches.first
    }

    public static func belongs(_ file: String, to slide: String) -> Bool {
        let url = URL(fileURLWithPath: slide)
        return [url.lastPathComponent, url.deletingPathExtension().lastPathComponent].contains(annotationStem(file))
    }

    /// GeoJSON files at `path` (a file, or a folder searched one level deep).
    public static func files(at path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw AnnotationError.unreadable(path: path, reason: "no such file or folder")
        }
        guard isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0.lowercased().hasSuffix(".geojson") || $0.lowercased().hasSuffix(".json") }.sorted().map { path + "/" + $0 }
    }

    static func annotationStem(_ file: String) -> String {
        let name = URL(fileURLWithPath: file).lastPathComponent
        for suffix in [".geojson", ".json"] where name.lowercased().hasSuffix(suffix) { return String(name.dropLast(suffix.count)) }
        return name
    }
}
