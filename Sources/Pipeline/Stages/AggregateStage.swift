import Foundation
import Heatmap
import Predict
import Storage

/// Slide labels from every slide's predictions (see `wsi aggregate`).
struct AggregateStage: Stage {
    static let kind = "aggregate"
    static let scope = StageScope.global
    static let summary = "slide-level labels and scores (labels.csv, one JSON per slide)"
    static let parameters = [
        ParameterSpec("rule", .string, default: .string("topk"), help: "mean | max | topk | majority | fraction"),
        ParameterSpec("k", .int, default: .int(50), help: "tiles averaged by topk"),
        ParameterSpec("threshold", .double, default: .double(0.5), help: "probability threshold of fraction"),
    ]
    static let inputs = [InputSpec("predictions", help: "the predict stage")]
    static let tableName = "labels.csv"

    let rule: AggregationRule

    init(_ p: StageParameters) throws {
        switch p.string("rule") ?? "topk" {
        case "mean": rule = .mean
        case "max": rule = .max
        case "topk": rule = .topK(max(1, p.int("k") ?? 50))
        case "majority": rule = .majority
        case "fraction": rule = .fractionAbove(p.double("threshold") ?? 0.5)
        case let other: throw StageError.failed("unknown rule '\(other)' (mean, max, topk, majority, fraction)")
        }
    }

    func run(_ context: StageContext) throws {
        var labels: [SlideLabel] = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        for directory in try context.input("predictions") {
            let predictions = try SlidePredictions(directory: directory)
            let stem = URL(fileURLWithPath: directory).lastPathComponent
            let label = Aggregation.label(slide: stem, probabilities: predictions.probabilities, classes: predictions.classes, rule: rule)
            try AtomicFile.write(try encoder.encode(label), to: context.output + "/\(stem).json")
            labels.append(label)
        }
        let classes = Array(Set(labels.flatMap { $0.scores.keys })).sorted()
        var csv = CSV.row(["slide", "label", "rule", "tiles"] + classes.map { "score_" + $0 })
        for label in labels {
            csv += CSV.row([label.slide, label.label, label.rule, String(label.tiles)] + classes.map { String(format: "%.6f", label.scores[$0] ?? .nan) })
        }
        try AtomicFile.write(Data(csv.utf8), to: context.output + "/" + Self.tableName)
    }
}
