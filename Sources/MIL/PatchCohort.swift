import Foundation
import NN
import Results
import Storage

/// A MIL experiment made of labelled patches (the classic set-up): a negative bag holds 50–150
/// benign patches of one organ, a positive bag also 3–5 % carcinoma patches. Training and
/// validation bags draw from the first half of each class's patches, test bags from the second.
/// The same protocol runs on any per-patch features, so learned features can be compared with a
/// random encoder and a colour histogram on identical bags.
public enum PatchCohort {
    /// Features of labelled patches: one row per patch, its class name beside it.
    public struct Pools {
        public var features: [[Float]]
        public var classes: [String]

        public init(features: [[Float]], classes: [String]) {
            self.features = features
            self.classes = classes
        }
    }

    public struct Bag {
        public var slide: String
        public var positive: Bool
        public var features: [[Float]]
        public var tumour: [Bool]
    }

    public struct Outcome {
        public var bagAUC: Double
        public var balancedAccuracy: Double
        /// Mean over positive test bags of the AUC with which attention ranks carcinoma above benign patches.
        public var instanceAUC: Double
        public var epochs: Int
        public var bestEpoch: Int
    }

    /// `half` 0 draws from the first half of each class's patches, 1 from the second. Organs:
    /// lung (benign `lung_n`, carcinoma `lung_aca` + `lung_scc`) or colon (`colon_n`, `colon_aca`).
    public static func makeBags(_ pools: Pools, organ: String = "lung", count: Int, half: Int, prefix: String,
                                generator: inout SeededGenerator) -> [Bag] {
        func pool(_ name: String) -> [Int] {
            let all = pools.classes.indices.filter { pools.classes[$0] == name }
            return half == 0 ? Array(all.prefix(all.count / 2)) : Array(all.suffix(all.count - all.count / 2))
        }
        let organ = organ == "colon" ? (benign: pool("colon_n"), tumour: pool("colon_aca"))
                                     : (benign: pool("lung_n"), tumour: pool("lung_aca") + pool("lung_scc"))
        return (0..<count).map { b in
            let positive = b % 2 == 1
            let size = 50 + Int(generator.next() % 101)
            let tumourCount = positive ? max(2, size * (3 + Int(generator.next() % 3)) / 100) : 0
            var rows = (0..<(size - tumourCount)).map { _ in (organ.benign[Int(generator.next() % UInt64(organ.benign.count))], false) }
            rows += (0..<tumourCount).map { _ in (organ.tumour[Int(generator.next() % UInt64(organ.tumour.count))], true) }
            rows.shuffle(using: &generator)
            return Bag(slide: "\(prefix)-\(b)", positive: positive, features: rows.map { pools.features[$0.0] }, tumour: rows.map(\.1))
        }
    }

    /// Writes bags as CLAM writes them (`<slide>.h5` with features and coords) and `labels.csv`.
    public static func write(_ bags: [(Bag, SlideLabels.Split)], to folder: String) throws {
        var labels = "slide_id,label,split\n"
        for (bag, split) in bags {
            let width = bag.features[0].count
            let writer = try HDF5Writer(path: folder + "/\(bag.slide).h5")
            try writer.write("features", Matrix(rows: bag.features.count, columns: width, values: bag.features.flatMap { $0 }),
                             attributes: ["encoder": .string("cohort"), "name": .string(bag.slide)])
            try writer.write("coords", Matrix(rows: bag.features.count, columns: 2, values: bag.features.indices.flatMap { [Int64($0 * 256), 0] }),
                             attributes: ["patch_size": .int(256), "patch_level": .int(0)])
            try writer.close()
            labels += "\(bag.slide),\(bag.positive ? "tumour" : "normal"),\(split.rawValue)\n"
        }
        try AtomicFile.write(Data(labels.utf8), to: folder + "/labels.csv")
    }

    /// A folder `write` made, read back as `train-mil` reads it, with the split its table names.
    public static func read(_ folder: String) throws -> (MILCohort, MILSplit) {
        let cohort = try MILCohort(bags: FeatureBag.discover([folder]), labels: SlideLabels(path: folder + "/labels.csv"))
        let split = try MILSplits.make(labels: cohort.labels, patients: cohort.patients, splits: cohort.splits, folds: cohort.folds,
                                       classes: 2, k: 5, seed: 0)[0]
        return (cohort, split)
    }

    /// 48 training bags (36 train, 12 validation) and 32 test bags, through the same files,
    /// labels table, split and trainer as `train-mil` (CLAM-SB, L 128, Da 64).
    public static func run(_ pools: Pools, organ: String, folder: String, seed: UInt64 = 11) throws -> Outcome {
        var generator = SeededGenerator(seed: seed)
        let train = makeBags(pools, organ: organ, count: 48, half: 0, prefix: "train", generator: &generator)
        let test = makeBags(pools, organ: organ, count: 32, half: 1, prefix: "test", generator: &generator)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try write(train.enumerated().map { ($1, $0 < 36 ? .train : .val) } + test.map { ($0, .test) }, to: folder)

        let (cohort, split) = try read(folder)
        var settings = MILTrainingSettings()
        settings.hidden = 128
        settings.attentionWidth = 64
        settings.epochs = 100
        settings.minimumEpochs = 40
        settings.patience = 30
        var trainer = MILTrainer(cohort: cohort, settings: settings)
        trainer.showProgress = false
        let (model, result) = try trainer.train(split, index: 0)
        guard let evaluation = result.test, let bagAUC = evaluation.auc else {
            throw MILSplitError.invalid("the cohort's test split has no predictions")
        }
        let instanceAUCs = try test.filter(\.positive).compactMap { bag in
            try ROC.auc(scores: model.predict(bag.features.flatMap { $0 }).rawAttention, positive: bag.tumour)
        }
        return Outcome(bagAUC: bagAUC, balancedAccuracy: evaluation.report.balancedAccuracy,
                       instanceAUC: instanceAUCs.reduce(0, +) / Double(max(instanceAUCs.count, 1)), epochs: result.epochs, bestEpoch: result.bestEpoch)
    }
}
