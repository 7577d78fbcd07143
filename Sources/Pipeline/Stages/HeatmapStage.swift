import Foundation
import Heatmap
import Predict
import SlideIO

/// Heatmap pictures and score grids of one slide.
struct HeatmapStage: Stage {
    static let kind = "heatmap"
    static let scope = StageScope.perSlide
    static let summary = "heatmap PNGs over the thumbnail and .npy score grids"
    static let parameters = [
        ParameterSpec("classes", .strings, placeholder: "NAME", help: "classes to draw (default: all)"),
        ParameterSpec("colormap", .choice(Colormap.allCases.map(\.rawValue)), default: .string(HeatmapStyle().colormap.rawValue),
                      help: "colour scale"),
        ParameterSpec("alpha", .double(0...1), default: .double(HeatmapStyle().alpha), help: "opacity of the scores over the thumbnail"),
        ParameterSpec("smooth", .double(0...100), default: .double(0), placeholder: "SIGMA", help: "Gaussian smoothing, σ in tiles"),
        ParameterSpec("interpolate", .bool, default: .bool(true), help: "blend between tile centres (off: one flat cell per tile)"),
        ParameterSpec("raw", .bool, default: .bool(false), help: "also write grid-<class>.png, the score grid alone"),
        ParameterSpec("thumbnail_size", .int(64...16384), default: .int(1024), placeholder: "PX", help: "long side of the picture"),
    ]
    static let inputs = [InputSpec("predictions", perSlide: true, help: "the predict stage's folder")]
    static let outputs = [
        OutputSpec("heatmap-<class>.png", "thumbnail with the scores blended in and a colour bar naming class and range"),
        OutputSpec("grid-<class>.npy", "the score grid at tile resolution, NaN where there is no tissue"),
        OutputSpec(ClassMap.fileName, "every tile in the colour of its most probable class, with a legend"),
    ]

    let style: HeatmapStyle
    let classes: [String]
    let rawGrid: Bool
    let thumbnailSize: Int

    init(_ p: StageParameters) throws {
        var style = HeatmapStyle()
        style.colormap = p.string("colormap").flatMap(Colormap.init) ?? style.colormap
        style.alpha = p.double("alpha") ?? style.alpha
        style.smoothingSigma = p.double("smooth") ?? 0
        style.interpolate = p.bool("interpolate")
        self.style = style
        classes = p.strings("classes")
        rawGrid = p.bool("raw")
        thumbnailSize = p.int("thumbnail_size") ?? 1024
    }

    func run(_ context: StageContext) throws -> String {
        let directory = try context.input("predictions")[0]
        let predictions = try SlidePredictions(directory: directory)
        if let unknown = classes.first(where: { !predictions.classes.contains($0) }) {
            throw StageError.failed("\(directory): no class '\(unknown)' (classes: \(predictions.classes.joined(separator: ", ")))")
        }
        let thumbnail = try Slide(path: try context.requireSlide()).thumbnail(maxSize: thumbnailSize)
        try SlideHeatmaps.write(predictions, source: directory + "/" + PredictionFiles.hdf5, thumbnail: thumbnail, classes: classes,
                                style: style, rawGrid: rawGrid, to: context.output)
        try ClassMap.render(predictions, thumbnail: thumbnail, alpha: style.alpha).write(to: context.output + "/" + ClassMap.fileName)
        return "\((classes.isEmpty ? predictions.classes : classes).count) heatmaps and a class map"
    }

    static func report(_ location: StageOutputLocation) -> ReportPart {
        guard location.slide != nil else { return ReportPart() }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: location.path)) ?? []
        return ReportPart(figures: [(location.folder + "/" + ClassMap.fileName, "most probable class (\(location.stageID))")]
                          + names.sorted().filter { $0.hasPrefix("heatmap-") && $0.hasSuffix(".png") }.map {
            (location.folder + "/" + $0, "\($0.dropFirst(8).dropLast(4)) (\(location.stageID))")
        })
    }
}
