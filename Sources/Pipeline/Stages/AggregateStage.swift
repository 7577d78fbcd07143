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
        let name = p.string("rule") ?? "topk"
        guard let rule = AggregationRule(name: name, k: p.int("k") ?? 50, threshold: p.double("threshold") ?? 0.5) else {
            throw StageError.failed("unknown rule '\(name)' (\(AggregationRule.names.joined(separator: ", ")))")
        }
        self.rule = rule
    }

    func run(_ context: StageContext) throws {
        var labels: [SlideLabel] = []
        for directory in try context.input("predictions") {
            let predictions = try SlidePredictions(directory: directory)
            let stem = URL(fileURLWithPath: directory).lastPathComponent
            let label = Aggregation.label(slide: stem, probabilities: predictions.probabilities, classes: predictions.classes, rule: rule)
            try AtomicFile.write(try Aggregation.json(label), to: context.output + "/\(stem).json")
            labels.append(label)
        }
        try AtomicFile.write(Data(Aggregation.table(labels).utf8), to: context.output + "/" + Self.tableName)
    }
}
