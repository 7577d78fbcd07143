import Annotations
import Foundation
import SlideIO
import Tiling

/// Tissue tiles of one slide.
public struct TileStage: Stage {
    public static let kind = "tile"
    public static let scope = StageScope.perSlide
    public static let summary = "cut tissue patches; coordinates as CSV + HDF5, patches, QC picture"
    public static let parameters = [
        ParameterSpec("mpp", .double(0.01...1000), help: "target microns per pixel (default 0.5; level 0 when the slide records no resolution)"),
        ParameterSpec("magnification", .double(0.1...400), help: "target objective magnification instead of mpp"),
        ParameterSpec("level", .int(0...64), help: "a pyramid level as it is, instead of mpp"),
        ParameterSpec("size", .int(8...8192), default: .int(256), placeholder: "PX", help: "patch side in pixels"),
        ParameterSpec("overlap", .int(0...8191), default: .int(0), placeholder: "PX", help: "overlap between neighbouring patches, below size"),
        ParameterSpec("tissue_threshold", .double(0...1), default: .double(0.5), help: "minimum tissue fraction of a patch"),
        ParameterSpec("format", .choice(PatchFormat.allCases.map(\.rawValue)), default: .string(PatchFormat.jpeg.rawValue),
                      help: "how the patches are stored (shard: one packed file per slide)"),
        ParameterSpec("jpeg_quality", .int(1...100), default: .int(90), help: "JPEG quality of jpeg patches"),
        ParameterSpec("assume_mpp", .double(0.01...1000), help: "microns per pixel of slides that record none"),
        ParameterSpec("colour_filter", .bool, default: .bool(true), help: "reject patches that look white, black or inked"),
        ParameterSpec("annotations", .path, placeholder: "GEOJSON",
                      help: "QuPath GeoJSON file or folder; a file belongs to the slide of its name (CMU-1.geojson, CMU-1.svs.geojson)"),
        ParameterSpec("label_threshold", .double(0.01...1), default: .double(0.5),
                      help: "a tile takes an annotation class covering at least this fraction of it"),
        ParameterSpec("roi_class", .strings, placeholder: "NAME", help: "keep only tiles these annotation classes cover (label_threshold)"),
        ParameterSpec("exclude_class", .strings, placeholder: "NAME",
                      help: "drop tiles these annotation classes cover by more than a tenth (pen marks, folds, blur)"),
        ParameterSpec("no_upsample", .bool, default: .bool(false),
                      help: "refuse a grid finer than the scan (40x of a 20x slide) instead of enlarging its pixels"),
        ParameterSpec("force", .bool, default: .bool(false), help: "allow grids of more than a million positions"),
        ParameterSpec("threads", .int(1...256), manifest: false, help: "worker threads (default: all cores)"),
    ]
    public static let inputs: [InputSpec] = []
    public static let outputs = [
        OutputSpec(TilingFiles.coordinatesCSV, "kept tiles: x, y (level 0), tissue, white, black and marker-ink fractions; with annotations a label and each class's fraction"),
        OutputSpec(TilingFiles.rejectedCSV, "tiles on tissue the colour filter rejected, with the reason"),
        OutputSpec(TilingFiles.coordinatesHDF5, "CLAM layout: coords [N,2] int64 with patch_size, patch_level, mpp attributes; with annotations labels and class_fractions"),
        OutputSpec(TilingFiles.qcPicture, "thumbnail with tissue outline, kept and rejected tiles"),
        OutputSpec(TilingFiles.summary, "grid, levels, counts, thresholds, timings"),
        OutputSpec("patches/ or patches.shard", "the patches (format jpeg | png, or shard)"),
    ]

    public let options: TilingOptions
    let annotations: String?
    /// Every class drawn in the run's annotation files, read once for all slides.
    private let annotationClasses = LoadedOnce<Set<String>>()

    public init(_ p: StageParameters) throws {
        let chosen = [p.double("mpp"), p.double("magnification"), p.int("level").map(Double.init)].compactMap { $0 }
        guard chosen.count <= 1 else { throw StageError.invalid("give only one of mpp, magnification, level") }
        let resolution: TileResolution
        if let mpp = p.double("mpp") { resolution = .micronsPerPixel(mpp) }
        else if let magnification = p.double("magnification") { resolution = .magnification(magnification) }
        else if let level = p.int("level") { resolution = .level(level) }
        else { resolution = .micronsPerPixel(0.5) }
        let size = p.int("size") ?? 256, overlap = p.int("overlap") ?? 0
        guard overlap < size else { throw StageError.invalid("overlap (\(overlap)) must be smaller than size (\(size))") }
        var options = TilingOptions(grid: TileGridSpec(resolution: resolution, size: size, overlap: overlap))
        options.defaultsToLevelZeroWithoutResolution = chosen.isEmpty
        options.tissueThreshold = p.double("tissue_threshold") ?? options.tissueThreshold
        options.format = p.string("format").flatMap(PatchFormat.init) ?? options.format
        options.jpegQuality = p.int("jpeg_quality") ?? options.jpegQuality
        options.assumedMicronsPerPixel = p.double("assume_mpp")
        options.quality.enabled = p.bool("colour_filter")
        if p.bool("force") { options.maximumGridTiles = .max }
        options.refusesEnlarging = p.bool("no_upsample")
        options.threads = p.int("threads") ?? options.threads
        options.labelThreshold = p.double("label_threshold") ?? options.labelThreshold
        options.roiClasses = Set(p.strings("roi_class"))
        options.excludeClasses = Set(p.strings("exclude_class"))
        annotations = p.string("annotations")
        if annotations == nil, !options.roiClasses.isEmpty || !options.excludeClasses.isEmpty {
            throw StageError.invalid("roi_class and exclude_class need annotations")
        }
        self.options = options
    }

    public func run(_ context: StageContext) throws -> String {
        var options = self.options
        options.showProgress = context.showProgress
        let slide = try context.requireSlide()
        if let annotations {
            let files = try AnnotationSet.files(at: annotations)
            if let stray = files.first(where: { file in !context.slides.contains { AnnotationSet.belongs(file, to: $0) } }) {
                throw StageError.failed("\(stray): no slide of this run has its name (slides: "
                                        + context.slides.prefix(5).map(SlideDiscovery.stem).joined(separator: ", ") + ")")
            }
            try checkClassesExist(files: files, folder: annotations)
            options.annotations = try AnnotationSet.file(for: slide, among: files).map(AnnotationSet.read)
            if options.annotations == nil, !options.roiClasses.isEmpty {
                throw StageError.failed("roi_class is set but \(annotations) holds no annotations for \(SlideDiscovery.stem(of: slide))")
            }
        }
        let summary = try TileExtractor(options: options).run(slidePath: slide, outputDirectory: context.output)
        var note = "\(summary.keptTiles) patches kept of \(summary.tissueTiles) on tissue (\(summary.gridTiles) in the grid), level \(summary.readLevel)"
        if let reason = summary.whyNoTiles { note += "; no tiles: \(reason)" }
        if let factor = summary.enlargedBy {
            note += String(format: "; the grid is finer than the scan: tiles enlarged %.2g× (no_upsample refuses)", factor)
        }
        if let classes = summary.classTiles, !classes.isEmpty {
            note += "; by class: " + classes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        if let ink = summary.inkFraction, ink > 0.001 { note += String(format: "; marker ink on %.1f%% of the slide, left out", ink * 100) }
        for warning in options.annotations?.warnings ?? [] { note += "; " + warning }
        return note
    }

    /// A class named in roi_class or exclude_class must be drawn somewhere in the run's
    /// annotations: a misspelt one would keep no tile (or exclude none) without a word.
    private func checkClassesExist(files: [String], folder: String) throws {
        let named = options.roiClasses.union(options.excludeClasses)
        guard !named.isEmpty else { return }
        let drawn = try annotationClasses.with(files: files, load: { Set(try files.flatMap { try AnnotationSet.read(path: $0).classNames }) }) { $0 }
        let unknown = named.subtracting(drawn).sorted()
        guard unknown.isEmpty else {
            throw StageError.invalid("roi_class / exclude_class \(unknown.joined(separator: ", ")): no annotation under \(folder) has "
                                     + (unknown.count == 1 ? "this class" : "these classes") + "; the classes drawn there: "
                                     + drawn.sorted().joined(separator: ", "))
        }
    }

    public static func report(_ location: StageOutputLocation) -> ReportPart {
        guard location.slide != nil else { return ReportPart() }
        var part = ReportPart(figures: [(location.folder + "/" + TilingFiles.qcPicture, "tiles kept (\(location.stageID))")])
        guard let summary = try? TilingFolder(location.path).summary() else { return part }
        part.html = "<table><tr><th>tiles kept</th><th>on tissue</th><th>in grid</th><th>patch µm/px</th><th>read level</th><th>rejected</th><th>tiling s</th></tr><tr>"
            + "<td>\(summary.keptTiles)</td><td>\(summary.tissueTiles)</td><td>\(summary.gridTiles)</td>"
            + "<td>\(summary.outputMicronsPerPixel.map { String(format: "%.3f", $0) } ?? "unknown")</td><td>\(summary.readLevel)</td>"
            + "<td>\(summary.rejected.isEmpty ? "none" : summary.rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))</td>"
            + String(format: "<td>%.1f</td></tr></table>", summary.seconds)
        if let reason = summary.whyNoTiles { part.html += "<p class=\"error\">No tiles: \(escapeHTML(reason))</p>" }
        if let factor = summary.enlargedBy {
            part.html += String(format: "<p class=\"error\">The grid is finer than the scan: tiles were enlarged %.2g× and add no detail.</p>", factor)
        }
        return part
    }
}
