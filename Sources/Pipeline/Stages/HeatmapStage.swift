import Foundation
import Heatmap
import Imaging
import Predict
import SlideIO
import Storage
import Results

/// Heatmap pictures and score grids of one slide.
struct HeatmapStage: Stage {
    static let kind = "heatmap"
    static let scope = StageScope.perSlide
    static let summary = "heatmap PNGs over the thumbnail and .npy score grids"
    /// TIFF compression, or auto: jpeg over the slide, deflate for RGBA.
    enum TIFFCompressionChoice: String, CaseIterable, Sendable {
        case auto, jpeg, deflate
    }

    static let classes = Option<[String]>("classes", placeholder: "NAME", help: "classes to draw (default: all)")
    static let colormap = Option<Colormap>("colormap", default: HeatmapStyle().colormap, help: "colour scale")
    static let alpha = Option<Double>("alpha", 0...1, default: HeatmapStyle().alpha, help: "opacity of the scores over the thumbnail")
    static let scale = Option<HeatmapScale>("scale", default: .auto,
                                            help: "what colours mean: percentile within the slide, or raw (probability 0-1; MIL attention scaled across the cohort, "
                                                + "so a negative slide stays cool); auto: probabilities raw, attention percentile")
    static let smooth = Option<Double>("smooth", 0...100, default: HeatmapStyle().smoothingSigma, placeholder: "SIGMA", help: "Gaussian smoothing, σ in tiles")
    static let interpolate = Option<Bool>("interpolate", default: HeatmapStyle().interpolate, help: "blend between tile centres (off: one flat cell per tile)")
    static let raw = Option<Bool>("raw", default: false, help: "also write grid-<class>.png, the score grid alone")
    static let thumbnailSize = Option<Int>("thumbnail_size", 64...16384, default: 1024, placeholder: "PX", help: "long side of the picture")
    static let tiff = Option<Bool>("tiff", default: false, help: "also write heatmap-<class>.tif, a pyramidal TIFF on the slide's pixel grid")
    static let tiffDownsample = Option<Double?>("tiff_downsample", 1...4096, placeholder: "D",
                                                help: "level-0 pixels per TIFF pixel (default: the slide up to 4096 px a side, at least 8 px a tile)")
    static let tiffMode = Option<HeatmapTIFF.Mode>("tiff_mode", default: .overSlide,
                                                   help: "colours blended over the slide, or RGBA (transparent without tissue) for overlays")
    static let tiffCompression = Option<TIFFCompressionChoice>("tiff_compression", default: .auto,
                                                               help: "auto: jpeg over the slide, deflate for RGBA (JPEG has no alpha)")
    static let parameters = [
        classes.spec, colormap.spec, alpha.spec, scale.spec, smooth.spec, interpolate.spec, raw.spec, thumbnailSize.spec, tiff.spec,
        tiffDownsample.spec, tiffMode.spec, tiffCompression.spec,
    ]
    static let inputs = [InputSpec("predictions", perSlide: true, reads: ["predict", "predict-mil"], help: "the predict or predict-mil stage's folder")]
    static let outputs = [
        OutputSpec("heatmap-<class>.png", "thumbnail with the scores blended in and a colour bar naming class and range"),
        OutputSpec("grid-<class>.npy", "the score grid at tile resolution, NaN where there is no tissue"),
        OutputSpec("heatmap-<class>.tif", "with tiff: tiled 256², pyramidal, resolution tags in µm when the slide has them; opens in OpenSlide and QuPath"),
        OutputSpec(ClassMap.fileName, "every tile in the colour of its most probable class, with a legend (with two or more classes)"),
    ]

    let style: HeatmapStyle
    let scale: HeatmapScale
    let classes: [String]
    let rawGrid: Bool
    let thumbnailSize: Int
    let tiff: Bool
    let tiffDownsample: Double?
    let tiffMode: HeatmapTIFF.Mode
    let tiffCompression: TIFFCompression

    init(_ p: StageParameters) throws {
        var style = HeatmapStyle()
        style.colormap = p[Self.colormap]
        style.alpha = p[Self.alpha]
        style.smoothingSigma = p[Self.smooth]
        style.interpolate = p[Self.interpolate]
        self.style = style
        scale = p[Self.scale]
        classes = p[Self.classes]
        rawGrid = p[Self.raw]
        thumbnailSize = p[Self.thumbnailSize]
        tiff = p[Self.tiff]
        tiffDownsample = p[Self.tiffDownsample]
        tiffMode = p[Self.tiffMode]
        switch p[Self.tiffCompression] {
        case .jpeg: tiffCompression = .jpeg
        case .deflate: tiffCompression = .deflate
        case .auto: tiffCompression = tiffMode == .rgba ? .deflate : .jpeg
        }
        if tiffMode == .rgba, tiffCompression == .jpeg { throw StageError.invalid("tiff_mode rgba needs tiff_compression deflate: JPEG has no alpha") }
    }

    func run(_ context: StageContext) throws -> String {
        let slide = try context.requireSlide()
        // predict-mil is global: its folder holds one sub-folder per slide.
        var directory = try context.input("predictions")[0]
        if !FileManager.default.fileExists(atPath: directory + "/" + PredictionFiles.hdf5) {
            directory += "/" + SlideDiscovery.stem(of: slide)
        }
        let predictions = try SlidePredictions(directory: directory)
        if let unknown = classes.first(where: { !predictions.classes.contains($0) }) {
            throw StageError.failed("\(directory): no class '\(unknown)' (classes: \(predictions.classes.joined(separator: ", ")))")
        }
        let thumbnail = try Slide(path: slide).thumbnail(maxSize: thumbnailSize)
        let source = directory + "/" + PredictionFiles.hdf5
        let verdict = Self.verdict(directory)
        try SlideHeatmaps.write(predictions, source: source, thumbnail: thumbnail, classes: classes, scale: scale, verdict: verdict,
                                style: style, rawGrid: rawGrid, to: context.output)
        var drawn = "\((classes.isEmpty ? predictions.classes : classes).count) heatmap(s)"
        let stems = SlideHeatmaps.fileStems(predictions.classes)
        let collisions = SlideHeatmaps.collisions(predictions.classes)
        if !collisions.isEmpty { drawn += " (class names that make the same file name: \(collisions))" }
        if tiff {
            let opened = try Slide(path: slide)
            let downsample = tiffDownsample ?? HeatmapTIFF.defaultDownsample(slideWidth: predictions.slideWidth, slideHeight: predictions.slideHeight,
                                                                             tileStride: predictions.stride)
            for className in classes.isEmpty ? predictions.classes : classes {
                let layer = try HeatmapLayer(predictions, className: className, scale: scale, source: source)
                var style = style
                style.range = layer.range
                let grid = ScoreGrid(origins: predictions.origins, scores: layer.values, footprint: predictions.footprint, stride: predictions.stride,
                                     slideWidth: predictions.slideWidth, slideHeight: predictions.slideHeight)
                let levels = try AtomicFile.produce(context.output + "/heatmap-\(stems[className] ?? SlideHeatmaps.fileStem(className)).tif") { temporary in
                    try HeatmapTIFF.write(grid: grid, style: style, slideWidth: predictions.slideWidth, slideHeight: predictions.slideHeight,
                                          downsample: downsample, mode: tiffMode, compression: tiffCompression,
                                          micronsPerPixel: opened.micronsPerPixel?.mean ?? predictions.micronsPerPixel, title: layer.measure,
                                          to: temporary) { x0, y0, width, rows, scale in
                        try Self.band(of: opened, x0: x0, y0: y0, width: width, rows: rows, scale: scale)
                    }
                }
                drawn += ", \(className).tif \(levels.count) levels from \(levels[0].width)×\(levels[0].height)"
            }
        }
        guard predictions.classes.count > 1 else { return drawn }  // one score (attention) has no classes to map
        try ClassMap.render(predictions, thumbnail: thumbnail, alpha: style.alpha).write(to: context.output + "/" + ClassMap.fileName)
        return drawn + " and a class map"
    }

    /// The line under the slide's name: predict-mil's slide label and its probability, or the
    /// mean probability of the drawn class over the slide's tiles (predict).
    static func verdict(_ directory: String) -> (String) -> String? {
        let data = FileManager.default.contents(atPath: directory + "/" + PredictionFiles.summary) ?? Data()
        if let mil = try? JSONDecoder().decode(PredictMILStage.SlideVerdict.self, from: data),
           let k = mil.classes.firstIndex(of: mil.predicted) {
            let line = String(format: "PREDICTED %@, P %.2f", mil.predicted, mil.probabilities[k])
                + ((mil.inSampleFolds ?? []).isEmpty ? "" : " (IN-SAMPLE)")
            return { _ in line }
        }
        if let tiles = try? JSONDecoder().decode(PredictionSummary.self, from: data) {
            return { className in
                tiles.classes.firstIndex(of: className).map {
                    String(format: "MEAN P(%@) %.2f OF %d TILES", className, tiles.meanProbabilities[$0], tiles.tiles)
                }
            }
        }
        return { _ in nil }
    }

    /// The slide's pixels under a band of a TIFF level that has `scale` level-0 pixels per pixel.
    static func band(of slide: Slide, x0: Int, y0: Int, width: Int, rows: Int, scale: Double) throws -> RGBImage {
        let level = slide.bestLevel(forDownsample: scale)
        let levelScale = slide.levels[level].downsample
        let regionWidth = max(1, Int((Double(width) * scale / levelScale).rounded(.up)))
        let regionHeight = max(1, Int((Double(rows) * scale / levelScale).rounded(.up)))
        let region = try slide.readRegion(x: x0, y: y0, level: level, width: regionWidth, height: regionHeight)
        return region.width == width && region.height == rows ? region : region.resized(width: width, height: rows)
    }

    static func report(_ location: StageOutputLocation) -> ReportPart {
        guard location.slide != nil else { return ReportPart() }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: location.path)) ?? []
        let classMap = FileManager.default.fileExists(atPath: location.path + "/" + ClassMap.fileName)
            ? [(location.folder + "/" + ClassMap.fileName, "most probable class (\(location.stageID))")] : []
        return ReportPart(figures: classMap
                          + names.sorted().filter { $0.hasPrefix("heatmap-") && $0.hasSuffix(".png") }.map {
            (location.folder + "/" + $0, "\($0.dropFirst(8).dropLast(4)) (\(location.stageID))")
        })
    }
}
