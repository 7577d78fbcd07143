import Annotations
import Foundation
import SlideIO
import Tiling

/// Tissue tiles of one slide.
public struct TileStage: Stage {
    public static let kind = "tile"
    public static let scope = StageScope.perSlide
    public static let summary = "cut tissue patches; coordinates as CSV + HDF5, patches, QC picture"
    /// Used when none of mpp, magnification and level is given.
    public static let defaultMicronsPerPixel = 0.5
    public static let mpp = Option<Double?>("mpp", 0.01...1000,
                                     help: "target microns per pixel (default \(defaultMicronsPerPixel); level 0 when the slide records no resolution)")
    public static let magnification = Option<Double?>("magnification", 0.1...400, help: "target objective magnification instead of mpp")
    public static let level = Option<Int?>("level", 0...64, help: "a pyramid level as it is, instead of mpp")
    public static let size = Option<Int>("size", 8...8192, default: 256, placeholder: "PX", help: "patch side in pixels")
    public static let overlap = Option<Int>("overlap", 0...8191, default: 0, placeholder: "PX", help: "overlap between neighbouring patches, below size")
    public static let tissueThreshold = Option<Double>("tissue_threshold", 0...1, default: 0.5, help: "minimum tissue fraction of a patch")
    public static let format = Option<PatchFormat>("format", default: .jpeg, help: "how the patches are stored (shard: one packed file per slide)")
    public static let jpegQuality = Option<Int>("jpeg_quality", 1...100, default: 90, help: "JPEG quality of jpeg patches")
    public static let assumeMPP = Option<Double?>("assume_mpp", 0.01...1000, help: "microns per pixel of slides that record none")
    public static let colourFilter = Option<Bool>("colour_filter", default: true, help: "reject patches that look white, black or inked")
    public static let annotations = Option<String?>("annotations", .path, placeholder: "GEOJSON",
                                             help: "QuPath GeoJSON file or folder; a file belongs to the slide of its name (CMU-1.geojson, CMU-1.svs.geojson)")
    public static let labelThreshold = Option<Double>("label_threshold", 0.01...1, default: 0.5,
                                               help: "a tile takes an annotation class covering at least this fraction of it")
    public static let roiClass = Option<[String]>("roi_class", placeholder: "NAME", help: "keep only tiles these annotation classes cover (label_threshold)")
    public static let excludeClass = Option<[String]>("exclude_class", placeholder: "NAME",
                                               help: "drop tiles these annotation classes cover by more than a tenth (pen marks, folds, blur)")
    public static let noUpsample = Option<Bool>("no_upsample", default: false,
                                         help: "refuse a grid finer than the scan (40x of a 20x slide) instead of enlarging its pixels")
    public static let force = Option<Bool>("force", default: false, help: "allow grids of more than a million positions")
    public static let threads = Option<Int?>("threads", 1...256, manifest: false, help: "worker threads (default: all cores)")
    public static let parameters = [
        mpp.spec, magnification.spec, level.spec, size.spec, overlap.spec, tissueThreshold.spec, format.spec, jpegQuality.spec,
        assumeMPP.spec, colourFilter.spec, annotations.spec, labelThreshold.spec, roiClass.spec, excludeClass.spec, noUpsample.spec,
        force.spec, threads.spec,
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
        let resolutions = [p[Self.mpp].map(TileResolution.micronsPerPixel), p[Self.magnification].map(TileResolution.magnification),
                           p[Self.level].map(TileResolution.level)].compactMap { $0 }
        guard resolutions.count <= 1 else { throw StageError.invalid("give only one of mpp, magnification, level") }
        let size = p[Self.size], overlap = p[Self.overlap]
        guard overlap < size else { throw StageError.invalid("overlap (\(overlap)) must be smaller than size (\(size))") }
        let resolution = resolutions.first ?? .micronsPerPixel(Self.defaultMicronsPerPixel)
        var options = TilingOptions(grid: TileGridSpec(resolution: resolution, size: size, overlap: overlap))
        options.defaultsToLevelZeroWithoutResolution = resolutions.isEmpty
        options.tissueThreshold = p[Self.tissueThreshold]
        options.format = p[Self.format]
        options.jpegQuality = p[Self.jpegQuality]
        options.assumedMicronsPerPixel = p[Self.assumeMPP]
        options.quality.enabled = p[Self.colourFilter]
        if p[Self.force] { options.maximumGridTiles = .max }
        options.refusesEnlarging = p[Self.noUpsample]
        options.threads = p[Self.threads] ?? options.threads
        options.labelThreshold = p[Self.labelThreshold]
        options.roiClasses = Set(p[Self.roiClass])
        options.excludeClasses = Set(p[Self.excludeClass])
        annotations = p[Self.annotations]
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
