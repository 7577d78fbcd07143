import Console
import Foundation
import NN
import Results

/// Everything that decides a training run besides the data. CLAM's defaults.
public struct MILTrainingSettings: Codable, Sendable, Equatable {
    public var model: MILConfig.Model = .clamSB
    /// L; nil: the feature width, at most 512. CLAM's 512 was chosen for 1024-wide ResNet
    /// features; widening narrower features costs compute without adding information.
    public var hidden: Int?
    /// Da; nil: half of L, CLAM's ratio.
    public var attentionWidth: Int?
    public var kSample = 8
    /// Nil: on when there are more than two classes, as CLAM does for subtyping tasks.
    public var subtyping: Bool?
    public var bagWeight = 0.7
    public var dropout = 0.25
    public var learningRate = 2e-4
    public var weightDecay = 1e-5
    /// The most epochs a fold trains; early stopping usually ends it sooner.
    public var epochs = 100
    /// Epochs without a lower validation loss before stopping...
    public var patience = 15
    /// ...but never before this many.
    public var minimumEpochs = 20
    public var seed: UInt64 = 0

    public init() {}

    public func config(width: Int, classes: [String]) -> MILConfig {
        let l = hidden ?? min(512, width)
        return MILConfig(model: model, embedDim: width, classes: classes.count, size: [l, attentionWidth ?? max(1, l / 2)], kSample: kSample,
                  subtyping: subtyping ?? (classes.count > 2), bagWeight: bagWeight, dropout: dropout, classNames: classes)
    }
}

/// The labelled slides that have bags, with what the splits need.
public struct MILCohort: Sendable {
    public var slides: [String]
    public var paths: [String]
    public var labels: [Int]
    public var patients: [String]
    public var splits: [SlideLabels.Split?]
    public var folds: [Int?]
    public var classes: [String]
    public var width: Int
    /// Slides of the labels table without a bag, and bags without a label: reported, not fatal.
    public var warnings: [String]
    /// Slides of the labels table without a feature file (left out, listed in the report).
    public var unmatchedSlides: [String] = []

    /// Matches bags to labels and reads every bag once to check it (empty, NaN, width).
    public init(bags: [(slide: String, path: String)], labels table: SlideLabels) throws {
        var slides: [String] = [], paths: [String] = [], labels: [Int] = [], patients: [String] = []
        var splits: [SlideLabels.Split?] = [], folds: [Int?] = []
        var width: Int?
        var matched = Set<String>()
        var unlabelled: [String] = []
        for bag in bags {
            guard let row = table.row(for: bag.slide), let label = table.classIndex(of: row.label) else {
                unlabelled.append(bag.slide)
                continue
            }
            let read = try FeatureBag.read(slide: bag.slide, path: bag.path)
            if let width, read.width != width {
                throw BagError.malformed(path: bag.path, reason: "features are \(read.width) wide, the other bags \(width); use one encoder for a cohort")
            }
            width = read.width
            matched.insert(row.slide)
            slides.append(bag.slide); paths.append(bag.path); labels.append(label); patients.append(row.patient)
            splits.append(row.split); folds.append(row.fold)
        }
        guard let width else {
            throw LabelsError.unreadable(path: table.path, reason: "none of its slides has a feature file (bags found: "
                                         + bags.prefix(5).map(\.slide).joined(separator: ", ") + (bags.count > 5 ? ", …" : "") + ")")
        }
        var warnings: [String] = []
        let missing = table.rows.map(\.slide).filter { !matched.contains($0) }
        if !missing.isEmpty {
            warnings.append("\(missing.count) labelled slide(s) have no feature file and are left out: " + missing.prefix(10).joined(separator: ", ")
                            + (missing.count > 10 ? ", …" : ""))
        }
        if !unlabelled.isEmpty {
            warnings.append("\(unlabelled.count) feature file(s) have no label and are left out: " + unlabelled.prefix(10).joined(separator: ", ")
                            + (unlabelled.count > 10 ? ", …" : ""))
        }
        (self.slides, self.paths, self.labels, self.patients, self.splits, self.folds) = (slides, paths, labels, patients, splits, folds)
        self.classes = table.classes
        self.width = width
        self.warnings = warnings
        unmatchedSlides = missing
    }
}

/// Reads bags on demand and keeps them while they fit a memory budget, so a small cohort is read
/// once and a large one costs the largest bag, not the cohort.
final class BagStore {
    private let cohort: MILCohort
    private let budget: Int
    private var cache: [Int: FeatureBag] = [:]
    private var cachedBytes = 0

    init(cohort: MILCohort, budgetBytes: Int) {
        self.cohort = cohort
        budget = budgetBytes
    }

    func bag(_ index: Int) throws -> FeatureBag {
        if let bag = cache[index] { return bag }
        let bag = try FeatureBag.read(slide: cohort.slides[index], path: cohort.paths[index])
        let bytes = bag.features.count * MemoryLayout<Float>.size
        if cachedBytes + bytes <= budget {
            cache[index] = bag
            cachedBytes += bytes
        }
        return bag
    }
}

/// A model's verdict on a set of slides.
public struct MILEvaluation: Codable, Sendable {
    public struct SlidePrediction: Codable, Sendable {
        public var slide: String
        public var label: String
        public var probabilities: [Double]
        public var predicted: String
    }

    public var loss: Double
    public var auc: Double?
    public var aucPerClass: [Double?]
    public var report: ClassificationReport
    public var predictions: [SlidePrediction]
}

/// One epoch's record, for `training.csv` and the loss curves.
public struct MILEpochRecord: Codable, Sendable {
    public var epoch: Int
    public var trainLoss: Double
    public var validationLoss: Double?
    public var validationAUC: Double?
    /// Training and validation of this epoch.
    public var seconds: Double
}

public struct MILFoldResult: Codable, Sendable {
    public var name: String
    public var trainSlides: [String]
    public var validationSlides: [String]
    public var testSlides: [String]
    public var epochs: Int
    /// The epoch whose weights were kept (lowest validation loss; the last without validation).
    public var bestEpoch: Int
    public var history: [MILEpochRecord]
    public var test: MILEvaluation?
    public var seconds: Double
}

/// Trains one attention-MIL model per split: one bag per step (CLAM's regime), classes sampled
/// equally often, AdamW, early stopping on the validation bag loss.
public struct MILTrainer {
    public let cohort: MILCohort
    public let settings: MILTrainingSettings
    public var showProgress = true
    private let store: BagStore

    public init(cohort: MILCohort, settings: MILTrainingSettings, cacheBytes: Int = 1 << 30) {
        self.cohort = cohort
        self.settings = settings
        store = BagStore(cohort: cohort, budgetBytes: cacheBytes)
    }

    public var config: MILConfig { settings.config(width: cohort.width, classes: cohort.classes) }

    public func train(_ split: MILSplit, index: Int) throws -> (model: AttentionMIL, result: MILFoldResult) {
        let start = Date()
        let model = AttentionMIL(config: config)
        var generator = SeededGenerator(seed: settings.seed &+ UInt64(index) &* 0x9E37_79B9)
        model.initialise(seed: generator.next())
        let optimiser = AdamW(parameters: model.parameters, learningRate: Float(settings.learningRate), beta1: 0.9, beta2: 0.999,
                              epsilon: 1e-8, weightDecay: Float(settings.weightDecay))
        let byClass = (0..<cohort.classes.count).map { c in split.train.filter { cohort.labels[$0] == c } }
        var history: [MILEpochRecord] = []
        var best: (loss: Double, epoch: Int, weights: [[Float]])?
        let progress = ProgressMeter(split.name, total: settings.epochs, enabled: showProgress)
        defer { progress.finish() }
        for epoch in 1...settings.epochs {
            let epochStart = Date()
            var lossSum = 0.0
            for _ in split.train {
                // Balanced sampling: a class uniformly, then one of its slides.
                let members = byClass[Int(generator.next() % UInt64(byClass.count))]
                let slide = members[Int(generator.next() % UInt64(members.count))]
                let bag = try store.bag(slide)
                optimiser.zeroGradients()
                try bag.features.withUnsafeBufferPointer {
                    _ = try model.forward($0.baseAddress!, tiles: bag.tiles, training: true, using: &generator)
                }
                let loss = try model.loss(label: cohort.labels[slide])
                guard loss.total.isFinite else {
                    throw MILSplitError.invalid("\(split.name), epoch \(epoch): the loss on slide '\(cohort.slides[slide])' is not a number; "
                                                + "lower the learning rate or check the features")
                }
                lossSum += Double(loss.total)
                try model.backward(label: cohort.labels[slide])
                optimiser.update()
            }
            var record = MILEpochRecord(epoch: epoch, trainLoss: lossSum / Double(max(1, split.train.count)), seconds: 0)
            if !split.validation.isEmpty {
                let validation = try evaluate(model, split.validation)
                record.validationLoss = validation.loss
                record.validationAUC = validation.auc
                if validation.loss < best?.loss ?? .infinity {
                    best = (validation.loss, epoch, model.parameters.map(\.value.array))
                }
            }
            record.seconds = Date().timeIntervalSince(epochStart)
            history.append(record)
            progress.advance(status: String(format: "loss %.3f", record.trainLoss)
                             + (record.validationLoss.map { String(format: " · val %.3f", $0) } ?? ""))
            if let best, epoch >= settings.minimumEpochs, epoch - best.epoch >= settings.patience { break }
        }
        if let best {
            for (parameter, values) in zip(model.parameters, best.weights) { parameter.value.copy(from: values) }
        }
        let test = try split.test.isEmpty ? nil : evaluate(model, split.test)
        let result = MILFoldResult(name: split.name, trainSlides: split.train.map { cohort.slides[$0] },
                                   validationSlides: split.validation.map { cohort.slides[$0] }, testSlides: split.test.map { cohort.slides[$0] },
                                   epochs: history.count, bestEpoch: best?.epoch ?? history.count, history: history, test: test,
                                   seconds: Date().timeIntervalSince(start))
        return (model, result)
    }

    /// Bag loss, one-vs-rest AUC and the classification report on `slides`, in inference mode.
    public func evaluate(_ model: AttentionMIL, _ slides: [Int]) throws -> MILEvaluation {
        let classes = cohort.classes.count
        var probabilities: [Float] = []
        var lossSum = 0.0
        var predictions: [MILEvaluation.SlidePrediction] = []
        for slide in slides {
            let output = try model.predict(store.bag(slide).features)
            probabilities += output.probabilities
            lossSum += Double(model.bagLoss(label: cohort.labels[slide]))
            let predicted = output.probabilities.indices.max { output.probabilities[$0] < output.probabilities[$1] } ?? 0
            predictions.append(.init(slide: cohort.slides[slide], label: cohort.classes[cohort.labels[slide]],
                                     probabilities: output.probabilities.map(Double.init), predicted: cohort.classes[predicted]))
        }
        let truth = slides.map { cohort.labels[$0] }
        let auc = ROC.oneVsRest(probabilities: probabilities, truth: truth, classes: classes)
        let report = ClassificationReport(truth: truth, predicted: predictions.map { cohort.classes.firstIndex(of: $0.predicted) ?? 0 },
                                          classes: cohort.classes)
        return MILEvaluation(loss: lossSum / Double(max(1, slides.count)), auc: classes == 2 ? auc.perClass[1] : auc.macro,
                             aucPerClass: auc.perClass, report: report, predictions: predictions)
    }
}
