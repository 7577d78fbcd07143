import Foundation
import Heatmap
import Predict
import SlideIO
import Storage

/// Heatmap PNGs and score grids of one slide (see `wsi heatmap`).
struct HeatmapStage: Stage {
    static let kind = "heatmap"
    static let scope = StageScope.perSlide
    static let summary = "heatmap PNGs over the thumbnail and .npy score grids"
    static let parameters = [
        ParameterSpec("classes", .strings, help: "classes to draw (default: all)"),
        ParameterSpec("colormap", .string, default: .string("viridis"), help: "viridis | jet | coolwarm"),
        ParameterSpec("alpha", .double, default: .double(0.5), help: "opacity of the scores"),
        ParameterSpec("smooth", .double, default: .double(0), help: "Gaussian smoothing, σ in tiles"),
        ParameterSpec("thumbnail_size", .int, default: .int(1024), help: "long side of the picture"),
    ]
    static let inputs = [InputSpec("predictions", help: "the predict stage")]

    let style: HeatmapStyle
    let classes: [String]
    let thumbnailSize: Int

    init(_ p: StageParameters) throws {
        var style = HeatmapStyle()
        guard let colormap = Colormap(rawValue: p.string("colormap") ?? "viridis") else {
            throw StageError.failed("colormap must be one of \(Colormap.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        style.colormap = colormap
        style.alpha = p.double("alpha") ?? 0.5
        style.smoothingSigma = p.double("smooth") ?? 0
        guard (0...1).contains(style.alpha), style.smoothingSigma >= 0 else { throw StageError.failed("alpha must be in 0...1 and smooth ≥ 0") }
        self.style = style
        classes = p.strings("classes")
        thumbnailSize = p.int("thumbnail_size") ?? 1024
    }

    /// File name of a class's heatmap.
    static func pictureName(_ className: String) -> String {
        "heatmap-" + String(className.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }) + ".png"
    }

    func run(_ context: StageContext) throws {
        let directory = try context.input("predictions")[0]
        let predictions = try SlidePredictions(directory: directory)
        let thumbnail = try Slide(path: context.slide!).thumbnail(maxSize: thumbnailSize)
        for className in classes.isEmpty ? predictions.classes : classes {
            let scores = try predictions.scores(of: className, path: directory + "/" + PredictionFiles.hdf5)
            let grid = ScoreGrid(origins: predictions.origins, scores: scores, footprint: predictions.footprint, stride: predictions.stride,
                                 slideWidth: predictions.slideWidth, slideHeight: predictions.slideHeight)
            let name = Self.pictureName(className)
            try HeatmapRenderer.render(grid: grid, thumbnail: thumbnail, slideWidth: predictions.slideWidth,
                                       slideHeight: predictions.slideHeight, title: className, style: style)
                .write(to: context.output + "/" + name)
            try AtomicFile.write(NPY.encode(grid.values, shape: [grid.rows, grid.columns]),
                                 to: context.output + "/" + name.replacingOccurrences(of: "heatmap-", with: "grid-").replacingOccurrences(of: ".png", with: ".npy"))
        }
    }
}
