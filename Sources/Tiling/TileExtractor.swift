import Annotations
import Concurrency
import Console
import Dispatch
import Foundation
import Imaging
import SlideIO
import Storage
import Tissue

public struct TilingOptions: Sendable {
    public var grid: TileGridSpec
    /// Minimum fraction of a tile's footprint the tissue mask must cover.
    public var tissueThreshold = 0.5
    public var mask = TissueMaskConfig()
    public var quality = TileQualityConfig()
    public var format = PatchFormat.jpeg
    public var jpegQuality = 90
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Microns per pixel to use when the slide records none.
    public var assumedMicronsPerPixel: Double?
    public var showProgress = true
    /// The grid was not chosen by the user: a slide without recorded resolution is then tiled at
    /// level 0 instead of failing.
    public var defaultsToLevelZeroWithoutResolution = false
    /// Grids beyond this many positions are refused: they come from a typo (overlap 95 of 96),
    /// not from a slide, and would run for hours.
    public var maximumGridTiles = 1_000_000
    /// Regions drawn on this slide: they label tiles and may restrict or exclude them.
    public var annotations: AnnotationSet?
    /// A tile takes a class when that class covers at least this fraction of it.
    public var labelThreshold = 0.5
    /// Only tiles these classes cover (at least `labelThreshold`) are kept, when any are given.
    public var roiClasses: Set<String> = []
    /// Tiles these classes cover by more than `excludedCoverLimit` are dropped (pen, folds, blur).
    public var excludeClasses: Set<String> = []
    public static let excludedCoverLimit = 0.1
    /// A tile with more of the mask's ink (with its rim) over it than this is rejected as ink:
    /// the rim catches the translucent edge of a smear that pixel rules cannot tell from eosin.
    public static let maximumMaskInk = 0.05
    /// Refuse grids finer than the slide's level 0 instead of enlarging its pixels.
    public var refusesEnlarging = false

    public init(grid: TileGridSpec) { self.grid = grid }

    /// The annotation classes that label tiles (those that only select or exclude regions do not).
    public var labelClasses: [String] {
        (annotations?.classNames ?? []).filter { !roiClasses.contains($0) && !excludeClasses.contains($0) }
    }
}

/// What one slide's tiling produced; also written as `tiling.json` beside the outputs.
public struct TilingSummary: Codable, Equatable, Sendable {
    public var slide: String
    public var vendor: String
    public var width: Int
    public var height: Int
    public var micronsPerPixel: Double?
    /// openslide, tiff-resolution or assumed (--assume-mpp); nil when the slide has none.
    public var micronsPerPixelSource: String?
    public var outputMicronsPerPixel: Double?
    public var patchSize: Int
    public var readLevel: Int
    /// Side of the region read at `readLevel` before resampling to `patchSize`.
    public var readSize: Int
    public var footprintLevel0: Int
    public var strideLevel0: Double
    public var gridTiles: Int
    public var tissueTiles: Int
    public var keptTiles: Int
    public var rejected: [String: Int]
    public var tissueThreshold: Double
    public var maskThreshold: Int
    public var format: String
    /// Wall time of the whole slide, of the thumbnail + segmentation, and of reading the tiles.
    public var seconds: Double
    public var maskSeconds: Double
    public var tileSeconds: Double
    /// Why a slide gave no tiles, in words a user can act on; nil when it gave some.
    public var whyNoTiles: String?
    /// Tiles were read from a smaller region and enlarged this many times (finer than level 0).
    public var enlargedBy: Double?
    /// Kept tiles per annotation class, with annotations.
    public var classTiles: [String: Int]?
    /// Share of the slide under marker ink, as the tissue mask found it.
    public var inkFraction: Double?
}

/// A tile that passed the mask and was read.
public struct TileResult: Sendable {
    public var x: Int
    public var y: Int
    public var tissueFraction: Double
    public var statistics: ColourStatistics
    public var rejection: TileRejection?
    /// Per annotation class (`TilingOptions.labelClasses` order), the fraction of the tile covered.
    public var classFractions: [Double] = []
    public var label: String?
}

/// A grid position on tissue, before its pixels are read.
struct Candidate: Sendable {
    var x: Int
    var y: Int
    var fraction: Double
    /// Reaches the tissue threshold only with the mask's ink counted: rejected as ink.
    var inked = false
    var classFractions: [Double] = []
    var label: String?
}

/// Output file names inside a slide's output directory.
public enum TilingFiles {
    public static let coordinatesCSV = "tiles.csv"
    public static let rejectedCSV = "rejected.csv"
    public static let coordinatesHDF5 = "coords.h5"
    /// The attributes of coords.h5's `coords` (CLAM's, TRIDENT's, ours), carried with the
    /// coordinates into features and exports.
    public static let coordinateAttributes = ["patch_size", "patch_level", "downsample", "level_dim", "downsampled_level_dim", "name", "save_path",
                                              "patch_size_level0", "overlap", "savetodir", "level0_width", "level0_height",
                                              "level0_magnification", "target_magnification", "mpp_level0", "target_mpp"]
    public static let summary = "tiling.json"
    public static let qcPicture = "qc.png"
    public static let patchDirectory = "patches"
}

/// Cuts one slide into tissue patches and writes every output atomically.
public struct TileExtractor {
    public let options: TilingOptions

    public init(options: TilingOptions) { self.options = options }

    /// Tiles processed per parallel batch: bounds memory (one batch of pixels in flight) whatever
    /// the slide size.
    static let batchSize = 64

    @discardableResult
    public func run(slidePath: String, outputDirectory: String) throws -> TilingSummary {
        let start = Date()
        let slide = try Slide(path: slidePath)
        let mpp = slide.micronsPerPixel(assuming: options.assumedMicronsPerPixel)
        let grid = try grid(for: slide, micronsPerPixel: mpp)
        let (mask, thumbnail) = try TissueMask.compute(slide: slide, micronsPerPixel: mpp, config: options.mask)
        let maskSeconds = Date().timeIntervalSince(start)
        let (candidates, turnedAway) = candidates(on: grid, mask: mask)
        let tileStart = Date()
        let results = try readAndStore(candidates, slide: slide, grid: grid, outputDirectory: outputDirectory)
        let tileSeconds = Date().timeIntervalSince(tileStart)

        let kept = results.filter { $0.rejection == nil }
        let rejected = results.filter { $0.rejection != nil }
        try writeCoordinates(kept: kept, rejected: rejected, grid: grid, slide: slide, outputDirectory: outputDirectory)
        let classCounts = options.labelClasses.map { name in (name: name, tiles: kept.filter { $0.label == name }.count) }
        let tiles = results.map { QCPicture.Tile(Level0Rect(x: $0.x, y: $0.y, width: grid.footprint, height: grid.footprint),
                                                 rejection: $0.rejection?.rawValue) }
        try QCPicture.render(thumbnail: thumbnail, mask: mask, tiles: tiles, annotations: options.annotations, classCounts: classCounts)
            .write(to: outputDirectory + "/" + TilingFiles.qcPicture)

        var reasons = turnedAway
        for case let reason? in rejected.map(\.rejection) { reasons[reason.rawValue, default: 0] += 1 }
        let summary = TilingSummary(
            slide: slidePath, vendor: slide.vendor, width: slide.dimensions.width, height: slide.dimensions.height,
            micronsPerPixel: mpp, micronsPerPixelSource: slide.micronsPerPixelSource ?? (mpp == nil ? nil : "assumed"),
            outputMicronsPerPixel: grid.outputMicronsPerPixel,
            patchSize: options.grid.size, readLevel: grid.readLevel, readSize: grid.readSize, footprintLevel0: grid.footprint,
            strideLevel0: grid.stride, gridTiles: grid.count, tissueTiles: candidates.count, keptTiles: kept.count,
            rejected: reasons, tissueThreshold: options.tissueThreshold, maskThreshold: Int(mask.threshold),
            format: options.format.rawValue, seconds: Date().timeIntervalSince(start), maskSeconds: maskSeconds, tileSeconds: tileSeconds,
            whyNoTiles: kept.isEmpty ? explainNoTiles(slide: slide, grid: grid, mask: mask, micronsPerPixel: mpp, tissueTiles: candidates.count,
                                                      rejected: reasons) : nil,
            enlargedBy: grid.enlargement,
            classTiles: options.annotations == nil ? nil : Dictionary(uniqueKeysWithValues: classCounts.map { ($0.name, $0.tiles) }),
            inkFraction: mask.inkFraction)
        try AtomicFile.write(try JSONFile.encode(summary), to: outputDirectory + "/" + TilingFiles.summary)
        return summary
    }

    /// The grid the options ask for on this slide, refused when it would enlarge pixels (with
    /// no_upsample), has absurdly many positions, or the annotations belong to another image.
    private func grid(for slide: Slide, micronsPerPixel mpp: Double?) throws -> TileGrid {
        var spec = options.grid
        if options.defaultsToLevelZeroWithoutResolution, mpp == nil { spec.resolution = .level(0) }
        let grid = try TileGrid(slide: slide, spec: spec, micronsPerPixel: mpp)
        if let factor = grid.enlargement, options.refusesEnlarging {
            throw SlideError.invalidRequest(path: slide.path, reason: "the grid asks for finer pixels than the scan has ("
                + (mpp.map { String(format: "%.3g µm/px at level 0", $0) } ?? "level 0") + String(format: "): tiles would be enlarged %.2g×", factor)
                + "; ask for a coarser resolution, or allow it by leaving out no_upsample")
        }
        if grid.count > options.maximumGridTiles {
            throw SlideError.invalidRequest(path: slide.path, reason: "the grid has \(grid.count) positions (\(grid.columns) × \(grid.rows)), "
                                            + "more than \(options.maximumGridTiles): check size and overlap, or allow it with --force")
        }
        try options.annotations?.check(width: slide.dimensions.width, height: slide.dimensions.height)
        return grid
    }

    /// Grid positions on tissue (or on tissue only with ink counted, to be rejected as ink), with
    /// their annotation classes; and how many the annotations' regions turned away.
    private func candidates(on grid: TileGrid, mask: TissueMask) -> ([Candidate], reasons: [String: Int]) {
        var candidates: [Candidate] = []
        var reasons: [String: Int] = [:]
        for row in 0..<grid.rows {
            for column in 0..<grid.columns {
                let (x, y) = grid.origin(column: column, row: row)
                let fraction = mask.tissueFraction(x: x, y: y, width: grid.footprint, height: grid.footprint)
                let ink = mask.inkFraction(x: x, y: y, width: grid.footprint, height: grid.footprint)
                guard fraction + ink >= options.tissueThreshold else { continue }
                var candidate = Candidate(x: x, y: y, fraction: fraction, inked: fraction < options.tissueThreshold || ink > TilingOptions.maximumMaskInk)
                if let turnedAway = label(&candidate, footprint: grid.footprint) {
                    reasons[turnedAway, default: 0] += 1
                    continue
                }
                candidates.append(candidate)
            }
        }
        return (candidates, reasons)
    }

    /// Gives the candidate its annotation classes; returns why the annotations turn it away
    /// (outside the regions of interest, or under an excluded region), or nil.
    private func label(_ candidate: inout Candidate, footprint: Int) -> String? {
        guard let annotations = options.annotations else { return nil }
        let cover = annotations.coverage(of: Rect(x: Double(candidate.x), y: Double(candidate.y), width: Double(footprint), height: Double(footprint)))
        if !options.roiClasses.isEmpty, options.roiClasses.map({ cover[$0] ?? 0 }).reduce(0, +) < options.labelThreshold { return "outside-roi" }
        if options.excludeClasses.map({ cover[$0] ?? 0 }).reduce(0, +) > TilingOptions.excludedCoverLimit { return "excluded-region" }
        let classes = options.labelClasses
        candidate.classFractions = classes.map { cover[$0] ?? 0 }
        if let best = candidate.classFractions.indices.max(by: { candidate.classFractions[$0] < candidate.classFractions[$1] }),
           candidate.classFractions[best] >= options.labelThreshold {
            candidate.label = classes[best]
        }
        return nil
    }

    /// Reads every candidate in parallel batches, checks its colours, and stores the kept
    /// patches in the chosen format.
    private func readAndStore(_ candidates: [Candidate], slide: Slide, grid: TileGrid, outputDirectory: String) throws -> [TileResult] {
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        let store = try options.format.store(in: outputDirectory, patchSize: options.grid.size, jpegQuality: options.jpegQuality)
        let progress = ProgressMeter(URL(fileURLWithPath: slide.path).lastPathComponent, total: candidates.count, enabled: options.showProgress)
        var results: [TileResult] = []
        results.reserveCapacity(candidates.count)
        for batchStart in stride(from: 0, to: candidates.count, by: Self.batchSize) {
            let batch = Array(candidates[batchStart..<min(candidates.count, batchStart + Self.batchSize)])
            for outcome in try readBatch(batch, slide: slide, grid: grid, store: store) {
                let result = outcome.result
                if let patch = outcome.patch {
                    try store.store(patch, x: result.x, y: result.y, tissueFraction: result.tissueFraction, level: grid.readLevel)
                }
                results.append(result)
            }
            progress.advance(by: batch.count)
        }
        progress.finish()
        try store.commit()
        return results
    }

    private func explainNoTiles(slide: Slide, grid: TileGrid, mask: TissueMask, micronsPerPixel mpp: Double?, tissueTiles: Int,
                                rejected: [String: Int]) -> String {
        let (w, h) = slide.dimensions
        if grid.count == 0 {
            return "the image (\(w)×\(h) px) is smaller than one tile (\(grid.footprint)×\(grid.footprint) level-0 px); "
                + "use a smaller size or a coarser mpp"
        }
        if mask.tissueFraction == 0 {
            let used = options.mask.areaMicronsPerPixel(mpp)
            let area = Double(w * h) * used * used
            if area < options.mask.minTissueAreaMicrons2 {
                return String(format: "the whole image covers %.0f µm² at %g µm/px%@, less than the minimum tissue area of %.0f µm², "
                              + "so the mask removed everything; give --assume-mpp with the image's real resolution",
                              area, used, mpp == nil ? " (assumed: the file records no resolution)" : "", options.mask.minTissueAreaMicrons2)
            }
            return "the tissue mask found no tissue (saturation threshold \(mask.threshold)): the slide looks blank; check it with mask-qc"
        }
        if tissueTiles == 0 {
            return String(format: "no tile has %g of its area on tissue (the mask covers %.1f%% of the slide); lower tissue_threshold or size",
                          options.tissueThreshold, mask.tissueFraction * 100)
        }
        let reasons = rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return "the colour filter rejected all \(tissueTiles) tissue tiles (\(reasons)); if they are tissue, turn the filter off"
    }

    private struct Outcome: Sendable {
        var result: TileResult
        /// A kept patch the store takes after the parallel part (a shard, in tile order).
        var patch: RGBImage?
    }

    /// Reads, resamples and checks one batch on worker threads, which store the kept patches
    /// when the store allows.
    private func readBatch(_ batch: [Candidate], slide: Slide, grid: TileGrid, store: any PatchStore) throws -> [Outcome] {
        let slots = Slots<Result<Outcome, Error>>(count: batch.count)
        let next = Counter()
        let options = self.options
        DispatchQueue.concurrentPerform(iterations: max(1, min(options.threads, batch.count))) { _ in
            while let i = next.take(below: batch.count) {
                let tile = batch[i]
                slots[i] = Result {
                    var patch = try slide.readRegion(x: tile.x, y: tile.y, level: grid.readLevel, width: grid.readSize, height: grid.readSize)
                    if patch.width != options.grid.size {
                        patch = patch.resized(width: options.grid.size, height: options.grid.size)
                    }
                    var (statistics, rejection) = TileQuality.assess(patch, config: options.quality)
                    if tile.inked, rejection == nil { rejection = .ink }
                    let result = TileResult(x: tile.x, y: tile.y, tissueFraction: tile.fraction, statistics: statistics, rejection: rejection,
                                            classFractions: tile.classFractions, label: tile.label)
                    guard rejection == nil else { return Outcome(result: result, patch: nil) }
                    guard store.storesInParallel else { return Outcome(result: result, patch: patch) }
                    try store.store(patch, x: tile.x, y: tile.y, tissueFraction: tile.fraction, level: grid.readLevel)
                    return Outcome(result: result, patch: nil)
                }
            }
        }
        return try slots.values.map { try $0!.get() }
    }

    private func writeCoordinates(kept: [TileResult], rejected: [TileResult], grid: TileGrid, slide: Slide,
                                  outputDirectory: String) throws {
        let classes = options.annotations == nil ? nil : options.labelClasses
        let header = ["x", "y", "tissue_fraction", "white_fraction", "black_fraction", "ink_fraction"]
            + (classes.map { ["label"] + $0.map { "fraction_" + $0 } } ?? [])
        func line(_ r: TileResult) -> [String] {
            [String(r.x), String(r.y), String(format: "%.4f", r.tissueFraction), String(format: "%.4f", r.statistics.white),
             String(format: "%.4f", r.statistics.black), String(format: "%.4f", r.statistics.ink)]
                + (classes == nil ? [] : [r.label ?? ""] + r.classFractions.map { String(format: "%.4f", $0) })
        }
        try AtomicFile.write(Data((CSV.row(header) + kept.map { CSV.row(line($0)) }.joined()).utf8),
                             to: outputDirectory + "/" + TilingFiles.coordinatesCSV)
        try AtomicFile.write(Data((CSV.row(header + ["reason"]) + rejected.map { CSV.row(line($0) + [$0.rejection?.rawValue ?? ""]) }.joined()).utf8),
                             to: outputDirectory + "/" + TilingFiles.rejectedCSV)

        let attributes = Self.coordinateAttributes(grid: grid, slide: slide, outputDirectory: outputDirectory)
        let coordinates = Matrix(rows: kept.count, columns: 2, values: kept.flatMap { [Int64($0.x), Int64($0.y)] })
        let fractions = Matrix(rows: kept.count, columns: 1, values: kept.map { Float($0.tissueFraction) })
        try AtomicFile.produce(outputDirectory + "/" + TilingFiles.coordinatesHDF5) { temporary in
            let writer = try HDF5Writer(path: temporary)
            try writer.write("coords", coordinates, attributes: attributes)
            try writer.write("tissue_fraction", fractions)
            if let classes {
                let json = String(decoding: try JSONSerialization.data(withJSONObject: classes), as: UTF8.self)
                try writer.write("class_fractions", Matrix(rows: kept.count, columns: classes.count, values: kept.flatMap { $0.classFractions.map(Float.init) }),
                                 attributes: ["classes": .string(json), "annotations": .string(options.annotations?.path ?? "")])
                try writer.write("labels", Matrix(rows: kept.count, columns: 1, values: kept.map { r in Int64(r.label.flatMap(classes.firstIndex) ?? -1) }),
                                 attributes: ["classes": .string(json)])
            }
            try writer.close()
        }
    }

    /// `coords`' attributes with the names and types CLAM's `create_patches_fp.py` and TRIDENT's
    /// `coords_to_h5` write, so both take their main path reading our tiles. CLAM reads
    /// `patch_size` pixels at `patch_level`; TRIDENT reads `patch_size` at
    /// `target_magnification`, `patch_size_level0` at level 0. The two agree whenever tiles are
    /// read without resampling, as CLAM only does.
    static func coordinateAttributes(grid: TileGrid, slide: Slide, outputDirectory: String) -> [String: HDF5Attribute] {
        let level = slide.levels[grid.readLevel], base = slide.levels[0]
        var attributes: [String: HDF5Attribute] = [
            "patch_size": .int(Int64(grid.spec.size)),
            "patch_level": .int(Int64(grid.readLevel)),
            "downsample": .doubles([level.downsample, level.downsample]),
            "level_dim": .ints([Int64(level.width), Int64(level.height)]),
            "downsampled_level_dim": .ints([Int64(level.width), Int64(level.height)]),
            "name": .string(URL(fileURLWithPath: slide.path).deletingPathExtension().lastPathComponent),
            "save_path": .string(PartialFolder.final(of: outputDirectory)),
            "patch_size_level0": .int(Int64(grid.footprint)),
            "overlap": .int(Int64(grid.spec.overlap)),
            "savetodir": .string(PartialFolder.final(of: outputDirectory)),
            "level0_width": .int(Int64(base.width)),
            "level0_height": .int(Int64(base.height)),
        ]
        // TRIDENT's magnifications are whole numbers: the scanner's objective, else 10 µm/px ÷ mpp
        // (0.25 µm/px is 40×); none is written when neither is known.
        if let level0 = slide.objectivePower ?? grid.micronsPerPixel.map({ 10 / $0 }) {
            let magnification = Int64(level0.rounded())
            attributes["level0_magnification"] = .int(magnification)
            attributes["target_magnification"] = .int(Int64((level0 * Double(grid.spec.size) / Double(grid.footprint)).rounded()))
        }
        if let mpp = grid.micronsPerPixel { attributes["mpp_level0"] = .double(mpp) }
        if let target = grid.outputMicronsPerPixel { attributes["target_mpp"] = .double(target) }
        return attributes
    }
}
