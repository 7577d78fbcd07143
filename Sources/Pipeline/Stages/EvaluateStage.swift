import Foundation
import Heatmap
import Predict
import SDMAE
import Storage

/// Whether a checkpoint's features carry tissue information: grouped cross-validation on
/// labelled patches, beside a randomly initialised network and a colour histogram.
struct EvaluateStage: Stage {
    static let kind = "evaluate"
    static let scope = StageScope.global
    static let summary = "grouped cross-validation of frozen features on labelled patches, against random init and colour"
    static let parameters = LabelledPatchOptions.parameters + [
        ParameterSpec("folds", .int(2...20), default: .int(5), help: "cross-validation folds (at most the number of sources)"),
        ParameterSpec("knn_k", .int(1...100), default: .int(5), help: "neighbours of the cosine kNN"),
    ] + EncoderInference.choiceParameters
    static let inputs = [EncoderInference.checkpointInput]
    static let resultName = "evaluation.json"
    static let confusionName = "confusion-linear.png"
    static let outputs = [
        OutputSpec(resultName, "balanced accuracy, macro-F1, per-class recall and confusion per feature set and probe, per-fold figures"),
        OutputSpec("evaluation.txt", "the side-by-side table as printed"),
        OutputSpec(confusionName, "confusion matrix of the checkpoint's linear probe"),
        OutputSpec("confusion-knn.png", "the same for kNN"),
    ]

    let labelled: String
    let rule: GroupRule
    let evaluation: GroupedEvaluation
    let choice: EncoderChoice

    init(_ p: StageParameters) throws {
        choice = try EncoderInference.choice(p)
        guard let labelled = p.string("labelled") else { throw StageError.invalid("labelled is required") }
        self.labelled = labelled
        rule = try LabelledPatchOptions.groupRule(p)
        var evaluation = GroupedEvaluation()
        evaluation.folds = p.int("folds") ?? evaluation.folds
        evaluation.knnK = p.int("knn_k") ?? evaluation.knnK
        evaluation.crops = p.bool("crops")
        evaluation.probe = LabelledPatchOptions.probe(p)
        evaluation.seed = evaluation.probe.seed
        self.evaluation = evaluation
    }

    func run(_ context: StageContext) throws -> String {
        let encoder = try EncoderInference.load(choice, files: try EncoderInference.files(choice, context), precision: .fp32)
        var evaluation = self.evaluation
        evaluation.showProgress = context.showProgress
        let report = try evaluation.run(encoder: encoder, patches: try LabelledPatches(root: labelled), groups: rule)
        try AtomicFile.write(try JSONFile.encode(report), to: context.output + "/" + Self.resultName)
        try AtomicFile.write(Data((report.text + "\n").utf8), to: context.output + "/evaluation.txt")
        if let checkpoint = report.results.first {
            try ConfusionPicture.render(checkpoint.linear, title: "LINEAR PROBE").write(to: context.output + "/" + Self.confusionName)
            try ConfusionPicture.render(checkpoint.knn, title: "KNN K=\(report.knnK)").write(to: context.output + "/confusion-knn.png")
        }
        return "\n" + report.text
    }

    static func report(_ location: StageOutputLocation) -> ReportPart {
        guard location.slide == nil, let data = FileManager.default.contents(atPath: location.path + "/" + resultName),
              let report = try? JSONDecoder().decode(EvaluationReport.self, from: data) else { return ReportPart() }
        var html = "<h2>Evaluation: \(escapeHTML(location.stageID))</h2><p>\(report.samples) samples from \(report.pictures) pictures of "
            + "\(report.groups) sources, \(report.classes.count) classes, \(report.folds)-fold cross-validation grouped by source.</p>"
            + "<table><tr><th>features</th><th>kNN (k=\(report.knnK)) balanced accuracy</th><th>kNN macro-F1</th>"
            + "<th>linear balanced accuracy</th><th>linear macro-F1</th></tr>"
        for result in report.results {
            html += "<tr><td>\(escapeHTML(result.features))</td>" + String(format: "<td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td></tr>",
                result.knn.balancedAccuracy, result.knn.macroF1, result.linear.balancedAccuracy, result.linear.macroF1)
        }
        html += "</table>"
        if let checkpoint = report.results.first {
            html += "<table><tr><th>class</th><th>linear recall</th><th>kNN recall</th></tr>"
            for (k, name) in report.classes.enumerated() {
                html += "<tr><td>\(escapeHTML(name))</td>" + String(format: "<td>%.3f</td><td>%.3f</td></tr>", checkpoint.linear.recall[k], checkpoint.knn.recall[k])
            }
            html += "</table>"
        }
        return ReportPart(html: html, figures: [(location.folder + "/" + confusionName, "confusion, linear probe (\(location.stageID))"),
                                                (location.folder + "/confusion-knn.png", "confusion, kNN (\(location.stageID))")])
    }
}
