import Foundation
import Heatmap
import Predict
import SlideIO

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

    func run(_ context: StageContext) throws {
        let directory = try context.input("predictions")[0]
        let predictions = try SlidePredictions(directory: directory)
        let thumbnail = try Slide(path: context.slide!).thumbnail(maxSize: thumbnailSize)
        try SlideHeatmaps.write(predictions, source: directory + "/" + PredictionFiles.hdf5, thumbnail: thumbnail, classes: classes,
                                style: style, rawGrid: false, to: context.output)
    }
}
