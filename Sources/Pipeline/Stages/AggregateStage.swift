import Foundation
import Predict
import Storage
import Results

/// Slide labels from every slide's predictions.
struct AggregateStage: Stage {
    static let kind = "aggregate"
    static let scope = StageScope.global
    static let summary = "slide-level labels and scores (labels.csv, one JSON per slide)"
    static let rule = Option<AggregationRule.Kind>("rule", default: .topk,
                                                   help: "slide score per class: mean, max, top-k mean, share of votes, share at or above threshold")
    static let k = Option<Int>("k", 1...1_000_000, default: 50, help: "tiles averaged by topk")
    static let threshold = Option<Double>("threshold", 0...1, default: 0.5, help: "probability threshold of fraction")
    static let parameters = [rule.spec, k.spec, threshold.spec]
    static let inputs = [InputSpec("predictions", perSlide: true, reads: ["predict", "predict-mil"], help: "the predict stage's folder")]
    static let tableName = "labels.csv"
    static let outputs = [
        OutputSpec(tableName, "slide, label, rule, tiles, a score per class"),
        OutputSpec("<slide>.json", "the same for one slide"),
    ]

    let rule: AggregationRule

    init(_ p: StageParameters) throws {
        rule = AggregationRule(p[Self.rule], k: p[Self.k], threshold: p[Self.threshold])
    }

    func run(_ context: StageContext) throws -> String {
        var labels: [SlideLabel] = []
        var empty: [String] = []
        for directory in try context.input("predictions") {
            let predictions = try SlidePredictions(directory: directory)
            let stem = URL(fileURLWithPath: directory).lastPathComponent
            let label = Aggregation.label(slide: stem, probabilities: predictions.probabilities, classes: predictions.classes, rule: rule)
            if label.tiles == 0 { empty.append(stem) }
            try AtomicFile.write(try Aggregation.json(label), to: context.output + "/\(stem).json")
            labels.append(label)
        }
        try AtomicFile.write(Data(Aggregation.table(labels).utf8), to: context.output + "/" + Self.tableName)
        return "\(labels.count) slides labelled (\(rule.name))" + (empty.isEmpty ? "" : "; no tiles, so no label: \(empty.joined(separator: ", "))")
    }

    static func report(_ location: StageOutputLocation) -> ReportPart {
        guard let slide = location.slide,
              let data = FileManager.default.contents(atPath: location.path + "/" + slide + ".json"),
              let label = try? JSONDecoder().decode(SlideLabel.self, from: data) else { return ReportPart() }
        let scores = label.scores.sorted { $0.key < $1.key }.map { "\(escapeHTML($0.key)) \(String(format: "%.3f", $0.value))" }
        return ReportPart(html: "<p>Label <strong>\(escapeHTML(label.label))</strong> (\(escapeHTML(label.rule)), \(label.tiles) tiles): "
                          + scores.joined(separator: ", ") + "</p>")
    }
}
