import Foundation
import Heatmap
import Predict
import SDMAE
import ViT
import Storage

/// Whether a checkpoint's features carry tissue information: grouped cross-validation on
/// labelled patches, beside a randomly initialised network and a colour histogram.
struct EvaluateStage: Stage {
    static let kind = "evaluate"
    static let scope = StageScope.global
    static let summary = "grouped cross-validation of frozen features on labelled patches, against random init and colour"
    static let folds = Option<Int>("folds", 2...20, default: GroupedEvaluation().folds, help: "cross-validation folds (at most the number of sources)")
    static let knnK = Option<Int>("knn_k", 1...100, default: GroupedEvaluation().knnK, help: "neighbours of the cosine kNN")
    static let startingWeights = Option<String?>("starting_weights", .path, placeholder: "FILE",
                                                 help: "the weights an adapted encoder started from: a row for them beside the adapted ones "
                                                     + "(needs encoder and weights: the adapted encoder's)")
    static let parameters = [LabelledPatchOptions.labelled.spec] + LabelledPatchOptions.sharedParameters + [folds.spec, knnK.spec]
        + EncoderInference.choiceParameters + [startingWeights.spec]
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
    let startingWeights: String?

    init(_ p: StageParameters) throws {
        choice = try EncoderInference.choice(p)
        startingWeights = p[Self.startingWeights]
        if startingWeights != nil, case .checkpoint = choice {
            throw StageError.invalid("starting_weights compares a published encoder's adapted weights with these: give encoder and weights")
        }
        labelled = p[LabelledPatchOptions.labelled]
        rule = try LabelledPatchOptions.groupRule(p)
        var evaluation = GroupedEvaluation()
        evaluation.folds = p[Self.folds]
        evaluation.knnK = p[Self.knnK]
        evaluation.crops = p[LabelledPatchOptions.crops]
        evaluation.probe = LabelledPatchOptions.probe(p)
        evaluation.seed = evaluation.probe.seed
        self.evaluation = evaluation
    }

    func run(_ context: StageContext) throws -> String {
        let encoder = try EncoderInference.load(choice, files: try EncoderInference.files(choice, context), precision: .fp32)
        var evaluation = self.evaluation
        evaluation.showProgress = context.showProgress
        var baseline: (any PatchEncoder)?
        if let startingWeights, case let .published(preset, _) = choice {
            baseline = try EncoderInference.load(.published(preset, weights: startingWeights), files: [startingWeights], precision: .fp32)
        }
        let report = try evaluation.run(encoder: encoder, baseline: baseline, patches: try LabelledPatches(root: labelled), groups: rule)
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
