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
    static let inputs = [InputSpec("predictions", perSlide: true, help: "the predict or predict-mil stage's folder")]
    static let outputs = [
        OutputSpec("heatmap-<class>.png", "thumbnail with the scores blended in and a colour bar naming class and range"),
        OutputSpec("grid-<class>.npy", "the score grid at tile resolution, NaN where there is no tissue"),
        OutputSpec(ClassMap.fileName, "every tile in the colour of its most probable class, with a legend (with two or more classes)"),
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
        try SlideHeatmaps.write(predictions, source: directory + "/" + PredictionFiles.hdf5, thumbnail: thumbnail, classes: classes,
                                style: style, rawGrid: rawGrid, to: context.output)
        let drawn = "\((classes.isEmpty ? predictions.classes : classes).count) heatmap(s)"
        guard predictions.classes.count > 1 else { return drawn }  // one score (attention) has no classes to map
        try ClassMap.render(predictions, thumbnail: thumbnail, alpha: style.alpha).write(to: context.output + "/" + ClassMap.fileName)
        return drawn + " and a class map"
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
