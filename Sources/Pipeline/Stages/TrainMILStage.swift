import Console
import Cluster
import Foundation
import Heatmap
import MIL
import Predict
import Storage
import Results

/// Attention MIL (CLAM-SB or ABMIL) trained from slide-level labels on bags of tile features,
/// cross-validated with folds stratified by label and grouped by patient.
struct TrainMILStage: Stage {
    static let kind = "train-mil"
    static let scope = StageScope.global
    static let summary = "attention MIL (CLAM-SB / ABMIL) from slide labels, cross-validated, on bags of tile features"
    private static let defaults = MILTrainingSettings()
    /// Whether other classes' instance classifiers see the top tiles as negatives.
    enum Subtyping: String, CaseIterable, Sendable {
        case auto, yes, no

        var setting: Bool? { self == .auto ? nil : self == .yes }
    }

    static let labels = Option<String>(required: "labels", .path, placeholder: "CSV",
                                       help: "slide_id,label table; optional columns split (train/val/test), fold, case_id or patient")
    static let classes = Option<[String]>("classes", placeholder: "NAME", help: "class order (default: sorted labels); other labels are refused")
    static let folds = Option<Int>("folds", 2...20, default: 5, help: "cross-validation folds when the table has no split or fold column")
    static let model = Option<MILConfig.Model>("model", default: defaults.model, help: "clam_sb adds CLAM's instance branch to gated-attention ABMIL")
    static let hidden = Option<Int?>("hidden", 8...4096, help: "L, width of the hidden tile features (default: the feature width, at most 512)")
    static let attentionWidth = Option<Int?>("attention_width", 4...4096, help: "Da, width of the gated attention (default: L/2)")
    static let kSample = Option<Int>("k_sample", 1...512, default: defaults.kSample, help: "tiles pseudo-labelled at each end of the attention ranking")
    static let subtyping = Option<Subtyping>("subtyping", default: .auto,
                                             help: "other classes' instance classifiers see the top tiles as negatives (auto: with 3+ classes)")
    static let bagWeight = Option<Double>("bag_weight", 0...1, default: defaults.bagWeight, help: "weight of the bag loss against the instance loss")
    static let dropout = Option<Double>("dropout", 0...0.9, default: defaults.dropout, help: "dropout on the hidden features while training")
    static let learningRate = Option<Double>("lr", 1e-6...1, default: defaults.learningRate, help: "AdamW learning rate")
    static let weightDecay = Option<Double>("weight_decay", 0...1, default: defaults.weightDecay, help: "AdamW weight decay (every parameter, as CLAM)")
    static let epochs = Option<Int>("epochs", 1...10000, default: defaults.epochs,
                                    help: "most epochs per fold (an epoch visits as many bags as the training set has)")
    static let patience = Option<Int>("patience", 1...10000, default: defaults.patience, help: "epochs without a lower validation loss before stopping")
    static let minimumEpochs = Option<Int>("min_epochs", 1...10000, default: defaults.minimumEpochs, help: "epochs before early stopping may stop")
    static let seed = Option<Int>("seed", 0...Int(Int32.max), default: 0, help: "folds, initialisation, sampling and dropout")
    static let parameters = [
        labels.spec, classes.spec, folds.spec, model.spec, hidden.spec, attentionWidth.spec, kSample.spec, subtyping.spec, bagWeight.spec,
        dropout.spec, learningRate.spec, weightDecay.spec, epochs.spec, patience.spec, minimumEpochs.spec, seed.spec,
    ]
    static let inputs = [
        InputSpec("features", multiple: true, reads: ["features"],
                  help: "the features stage's folder, or CLAM/TRIDENT feature files (<slide>.h5) or folders of them"),
    ]
    static let metricsName = "metrics.json"
    static let predictionsName = "predictions.csv"
    static let historyName = "training.csv"
    static let confusionName = "confusion.png"
    static let outputs = [
        OutputSpec("fold-<k>.safetensors", "one model per fold under CLAM's parameter names, config and classes in the metadata"),
        OutputSpec("fold-<k>.json", "the fold's slides, epochs, best epoch, history and test metrics"),
        OutputSpec(metricsName, "per fold and pooled: AUC (one-vs-rest), balanced accuracy, confusion; mean and spread over folds"),
        OutputSpec(predictionsName, "each slide predicted by the fold model that held it out: slide_id, label, fold, p_<class>, predicted"),
        OutputSpec(historyName, "fold, epoch, training loss, validation loss and AUC, seconds"),
        OutputSpec(confusionName, "confusion matrix of the held-out predictions, all folds pooled"),
    ]
    static let resumesPartialOutput = true
    static let runsOnEveryRank = true

    let labelsPath: String
    let classes: [String]
    let folds: Int
    let settings: MILTrainingSettings

    init(_ p: StageParameters) throws {
        labelsPath = p[Self.labels]
        classes = p[Self.classes]
        folds = p[Self.folds]
        var settings = MILTrainingSettings()
        settings.model = p[Self.model]
        settings.hidden = p[Self.hidden]
        settings.attentionWidth = p[Self.attentionWidth]
        settings.kSample = p[Self.kSample]
        settings.subtyping = p[Self.subtyping].setting
        settings.bagWeight = p[Self.bagWeight]
        settings.dropout = p[Self.dropout]
        settings.learningRate = p[Self.learningRate]
        settings.weightDecay = p[Self.weightDecay]
        settings.epochs = p[Self.epochs]
        settings.patience = p[Self.patience]
        settings.minimumEpochs = p[Self.minimumEpochs]
        settings.seed = UInt64(p[Self.seed])
        self.settings = settings
    }

    /// What a finished fold file must have been trained with to be reused after an interruption.
    struct FoldRecord: Codable {
        var settings: MILTrainingSettings
        var trainSlides: [String]
        var result: MILFoldResult
    }

    /// A fold trained on some rank, on its way to the leader, which writes it.
    private struct FoldOutcome: Codable {
        var index = 0
        var model = Data()
        var record = Data()
        var error: String?
    }

    func run(_ context: StageContext) throws -> String {
        let group = context.group
        // Every rank reads the table and the bags and checks in: one that cannot stops them all.
        let (cohort, splits) = try group.agree(Result {
            let table = try SlideLabels(path: labelsPath, classes: classes)
            let cohort = try MILCohort(bags: try FeatureBag.discover(try context.input("features")), labels: table)
            let splits = try MILSplits.make(labels: cohort.labels, patients: cohort.patients, splits: cohort.splits, folds: cohort.folds,
                                            classes: cohort.classes.count, k: folds, seed: settings.seed)
            return (cohort, splits)
        }, what: "reading the labels and the feature bags")
        var results: [Int: MILFoldResult] = [:]
        if group.isLeader {
            for warning in cohort.warnings { printError("train-mil: " + warning) }
            // Fold files of an interrupted run with other folds would otherwise join predict-mil's ensemble.
            let names = Set(splits.map(\.name))
            for stale in ((try? FileManager.default.contentsOfDirectory(atPath: context.output)) ?? [])
            where (stale.hasSuffix(".safetensors") || stale.hasSuffix(".json")) && !names.contains(URL(fileURLWithPath: stale).deletingPathExtension().lastPathComponent) {
                try? FileManager.default.removeItem(atPath: context.output + "/" + stale)
            }
            results = finishedFolds(splits, cohort: cohort, in: context.output)
        }
        let finished = try JSONDecoder().decode(Set<Int>.self, from: try group.broadcast(try JSONEncoder().encode(Set(results.keys)),
                                                                                           what: "listing the finished folds"))
        let pending = splits.indices.filter { !finished.contains($0) }

        var trainer = MILTrainer(cohort: cohort, settings: settings)
        trainer.showProgress = context.showProgress
        // Folds are dealt round the ranks; after each round every rank's fold reaches the leader.
        for round in stride(from: 0, to: pending.count, by: group.size) {
            var mine = FoldOutcome()
            if round + group.rank < pending.count {
                let index = pending[round + group.rank]
                do { mine = try trainFold(index, splits[index], trainer: trainer, cohort: cohort) } catch {
                    mine = FoldOutcome(index: index, error: describeError(error))
                }
            }
            for owner in 0..<group.size where round + owner < pending.count {
                let message = try group.broadcast(try JSONEncoder().encode(mine), from: owner, what: "collecting the folds of rank \(owner)")
                let fold = try JSONDecoder().decode(FoldOutcome.self, from: message)
                let split = splits[fold.index]
                if let error = fold.error { throw StageError.failed("\(split.name)\(group.size > 1 ? " (rank \(owner))" : ""): \(error)") }
                guard group.isLeader else { continue }
                try AtomicFile.write(fold.model, to: context.output + "/\(split.name).safetensors")
                try AtomicFile.write(fold.record, to: context.output + "/\(split.name).json")
                results[fold.index] = try JSONDecoder().decode(FoldRecord.self, from: fold.record).result
            }
        }
        guard group.isLeader else { return "" }
        var summary = MILSummary(classes: cohort.classes, folds: splits.indices.compactMap { results[$0] })
        summary.withoutFeatures = cohort.unmatchedSlides
        try AtomicFile.write(try JSONFile.encode(summary), to: context.output + "/" + Self.metricsName)
        try AtomicFile.write(Data(summary.predictionsCSV().utf8), to: context.output + "/" + Self.predictionsName)
        try AtomicFile.write(Data(summary.historyCSV().utf8), to: context.output + "/" + Self.historyName)
        if let pooled = summary.pooled {
            try ConfusionPicture.render(pooled, title: "HELD OUT, ALL FOLDS").write(to: context.output + "/" + Self.confusionName)
        }
        return "\(cohort.slides.count) slides, \(splits.count) fold(s): " + summary.headline
    }

    /// Folds an interrupted run finished with these settings and training slides.
    private func finishedFolds(_ splits: [MILSplit], cohort: MILCohort, in folder: String) -> [Int: MILFoldResult] {
        var finished: [Int: MILFoldResult] = [:]
        for (index, split) in splits.enumerated() {
            let trainSlides = split.train.map { cohort.slides[$0] }
            if FileManager.default.fileExists(atPath: folder + "/\(split.name).safetensors"),
               let data = FileManager.default.contents(atPath: folder + "/\(split.name).json"),
               let record = try? JSONDecoder().decode(FoldRecord.self, from: data),
               record.settings == settings, record.trainSlides == trainSlides {
                finished[index] = record.result
            }
        }
        return finished
    }

    private func trainFold(_ index: Int, _ split: MILSplit, trainer: MILTrainer, cohort: MILCohort) throws -> FoldOutcome {
        for (i, c) in cohort.classes.enumerated() where !split.test.isEmpty && !split.test.contains(where: { cohort.labels[$0] == i }) {
            printError("train-mil: \(split.name) has no '\(c)' slide to test; its AUC for that class is undefined")
        }
        let (model, result) = try trainer.train(split, index: index)
        let record = FoldRecord(settings: settings, trainSlides: split.train.map { cohort.slides[$0] }, result: result)
        return FoldOutcome(index: index, model: try model.encoded(metadata: ["fold": split.name, "labels": labelsPath]),
                           record: try JSONFile.encode(record))
    }

    static func report(_ location: StageOutputLocation) -> ReportPart {
        guard location.slide == nil, let data = FileManager.default.contents(atPath: location.path + "/" + metricsName),
              let summary = try? JSONDecoder().decode(MILSummary.self, from: data) else { return ReportPart() }
        var html = "<h2>Attention MIL: \(escapeHTML(location.stageID))</h2><p>\(escapeHTML(summary.headline))</p>"
            + "<table><tr><th>fold</th><th>train / val / test slides</th><th>epochs (kept)</th><th>test AUC</th><th>test balanced accuracy</th></tr>"
        for fold in summary.folds {
            html += "<tr><td>\(escapeHTML(fold.name))</td><td>\(fold.trainSlides.count) / \(fold.validationSlides.count) / \(fold.testSlides.count)</td>"
                + "<td>\(fold.epochs) (\(fold.bestEpoch))</td>"
                + "<td>\(fold.test?.auc.map { String(format: "%.3f", $0) } ?? "–")</td>"
                + "<td>\(fold.test.map { String(format: "%.3f", $0.report.balancedAccuracy) } ?? "–")</td></tr>"
        }
        html += "</table>" + rocChart(summary) + lossChart(summary) + cohortTable(summary)
        return ReportPart(html: html, figures: [(location.folder + "/" + confusionName, "held-out confusion (\(location.stageID))")])
    }

    /// Every slide of the run: its true label, the fold that held it out, that fold model's
    /// prediction and whether it is right; slides only trained on are listed as such.
    static func cohortTable(_ summary: MILSummary) -> String {
        var rows: [String: String] = [:]
        for fold in summary.folds {
            for slide in fold.trainSlides + fold.validationSlides where rows[slide] == nil {
                rows[slide] = "<td>\(escapeHTML(slide))</td><td>–</td><td>–</td><td colspan=\"3\">trained on only (no held-out prediction)</td>"
            }
        }
        for slide in summary.withoutFeatures ?? [] {
            rows[slide] = "<td>\(escapeHTML(slide))</td><td>–</td><td>–</td><td colspan=\"3\" class=\"error\">no feature file: left out</td>"
        }
        var wrong = 0, tested = 0
        for fold in summary.folds {
            for p in fold.test?.predictions ?? [] {
                let k = summary.classes.firstIndex(of: p.predicted) ?? 0
                let right = p.predicted == p.label
                tested += 1
                if !right { wrong += 1 }
                rows[p.slide] = "<td>\(escapeHTML(p.slide))</td><td>\(escapeHTML(p.label))</td><td>\(escapeHTML(fold.name))</td>"
                    + "<td>\(escapeHTML(p.predicted))</td><td>\(String(format: "%.3f", p.probabilities.indices.contains(k) ? p.probabilities[k] : .nan))</td>"
                    + (right ? "<td>right</td>" : "<td class=\"error\">wrong</td>")
            }
        }
        return "<h3>Every slide (\(rows.count); \(wrong) of \(tested) held-out predictions wrong)</h3>"
            + "<table><tr><th>slide</th><th>true label</th><th>held out in</th><th>predicted</th><th>p(predicted)</th><th></th></tr>"
            + rows.sorted { $0.key < $1.key }.map { "<tr>\($0.value)</tr>" }.joined() + "</table>"
    }

    /// One-vs-rest ROC curves of the held-out predictions, all folds pooled (the positive class
    /// alone for two classes).
    static func rocChart(_ summary: MILSummary) -> String {
        let predictions = summary.folds.flatMap { $0.test?.predictions ?? [] }
        let shown = summary.classes.count == 2 ? [1] : Array(summary.classes.indices)
        let series = shown.compactMap { k -> SVGChart.Series? in
            let scores = predictions.map { Float($0.probabilities.indices.contains(k) ? $0.probabilities[k] : 0) }
            let positive = predictions.map { $0.label == summary.classes[k] }
            let curve = ROC.curve(scores: scores, positive: positive)
            guard !curve.isEmpty, let auc = ROC.auc(scores: scores, positive: positive) else { return nil }
            return SVGChart.Series(name: String(format: "%@ AUC %.3f", summary.classes[k], auc), colour: SVGChart.palette[k % SVGChart.palette.count],
                                   points: curve.map { ($0.falsePositiveRate, $0.truePositiveRate) })
        }
        guard !series.isEmpty else { return "" }
        let chance = SVGChart.Series(name: "chance", colour: "#aaa", points: [(0, 0), (1, 1)], dashed: true)
        return SVGChart(title: "ROC of the held-out slides (\(predictions.count))", xLabel: "false positive rate", yLabel: "true positive rate",
                        series: series + [chance], xRange: 0...1, yRange: 0...1, width: 480, height: 340).svg
    }

    /// Training (solid) and validation (dashed) loss per epoch, a colour per fold.
    static func lossChart(_ summary: MILSummary) -> String {
        let series = summary.folds.enumerated().flatMap { index, fold -> [SVGChart.Series] in
            let colour = SVGChart.palette[index % SVGChart.palette.count]
            return [SVGChart.Series(name: fold.name + " train", colour: colour, points: fold.history.map { (Double($0.epoch), $0.trainLoss) }),
                    SVGChart.Series(name: fold.name + " validation", colour: colour,
                                    points: fold.history.compactMap { r in r.validationLoss.map { (Double(r.epoch), $0) } }, dashed: true)]
        }
        return SVGChart(title: "Loss per epoch", xLabel: "epoch", yLabel: "cross-entropy", series: series.filter { !$0.points.isEmpty }).svg
    }
}

/// The folds of a train-mil run together: what `metrics.json` holds.
struct MILSummary: Codable {
    var classes: [String]
    var folds: [MILFoldResult]
    var meanAUC: Double?
    var sdAUC: Double?
    var meanBalancedAccuracy: Double?
    /// Every held-out prediction of every fold at once.
    var pooled: ClassificationReport?
    var pooledAUC: Double?
    /// Slides of the labels table that had no feature file.
    var withoutFeatures: [String]?

    init(classes: [String], folds: [MILFoldResult]) {
        self.classes = classes
        self.folds = folds
        let aucs = folds.compactMap { $0.test?.auc }
        if !aucs.isEmpty {
            let mean = aucs.reduce(0, +) / Double(aucs.count)
            meanAUC = mean
            sdAUC = (aucs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(1, aucs.count - 1))).squareRoot()
        }
        let accuracies = folds.compactMap { $0.test?.report.balancedAccuracy }
        meanBalancedAccuracy = accuracies.isEmpty ? nil : accuracies.reduce(0, +) / Double(accuracies.count)
        let predictions = folds.flatMap { $0.test?.predictions ?? [] }
        if !predictions.isEmpty {
            let truth = predictions.map { classes.firstIndex(of: $0.label) ?? 0 }
            pooled = ClassificationReport(truth: truth, predicted: predictions.map { classes.firstIndex(of: $0.predicted) ?? 0 }, classes: classes)
            let auc = ROC.oneVsRest(probabilities: predictions.flatMap { $0.probabilities.map(Float.init) }, truth: truth, classes: classes.count)
            pooledAUC = classes.count == 2 ? auc.perClass[1] : auc.macro
        }
    }

    var headline: String {
        var parts: [String] = []
        if let meanAUC { parts.append(String(format: "test AUC %.3f ± %.3f over %d fold(s)", meanAUC, sdAUC ?? 0, folds.count)) }
        if let meanBalancedAccuracy { parts.append(String(format: "balanced accuracy %.3f", meanBalancedAccuracy)) }
        if let pooledAUC { parts.append(String(format: "pooled AUC %.3f", pooledAUC)) }
        return parts.isEmpty ? "no test slides (the split has none)" : parts.joined(separator: ", ")
    }

    func predictionsCSV() -> String {
        var text = CSV.row(["slide_id", "label", "fold"] + classes.map { "p_" + $0 } + ["predicted"])
        for fold in folds {
            for p in fold.test?.predictions ?? [] {
                text += CSV.row([p.slide, p.label, fold.name] + p.probabilities.map { String(format: "%.6f", $0) } + [p.predicted])
            }
        }
        return text
    }

    func historyCSV() -> String {
        var text = CSV.row(["fold", "epoch", "train_loss", "validation_loss", "validation_auc", "seconds"])
        for fold in folds {
            for r in fold.history {
                text += CSV.row([fold.name, String(r.epoch), String(format: "%.6f", r.trainLoss),
                                 r.validationLoss.map { String(format: "%.6f", $0) } ?? "", r.validationAUC.map { String(format: "%.6f", $0) } ?? "",
                                 String(format: "%.3f", r.seconds)])
            }
        }
        return text
    }
}
