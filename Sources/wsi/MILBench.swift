import Foundation
import MIL
import Predict
import SDMAE
import Tiling
import NN
import Pipeline
import Storage

/// `wsi bench mil`: train-mil's cost on a cohort of synthetic bags written to disk as HDF5, so
/// reading is measured with the compute (the values do not change the arithmetic).
enum MILBench {
    static let bags = Option<Int>("bags", 2...100_000, default: 1000, manifest: false, help: "bags in the cohort")
    static let tiles = Option<Int>("tiles", 1...1_000_000, default: 2000, manifest: false, help: "tiles per bag")
    static let width = Option<Int>("width", 1...8192, default: 192, manifest: false, help: "features per tile")
    static let epochs = Option<Int>("epochs", 1...1000, default: 3, manifest: false, help: "timed epochs")
    static let hidden = Option<Int?>("hidden", 8...4096, manifest: false, help: "L (default: as train-mil, the width, at most 512)")
    static let attentionWidth = Option<Int?>("attention_width", 4...4096, manifest: false, help: "Da (default: L/2)")
    static let cacheMB = Option<Int>("cache_mb", 0...1_000_000, default: 0, manifest: false,
                                     help: "bags kept in memory (0: every bag read from disk every time, memory bounded by the largest bag)")
    static let spec = CommandSpec(name: "bench mil", summary: "attention-MIL training throughput", synopsis: "[options]",
                                  details: """
                                  Writes a cohort of random bags as HDF5 files and times train-mil's epochs (one bag per
                                  step, forward, backward, AdamW), reading every bag from disk unless --cache-mb keeps them.
                                  """,
                                  options: [bags.spec, tiles.spec, width.spec, epochs.spec, hidden.spec, attentionWidth.spec, cacheMB.spec])

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let (values, what) = try spec.parse(&arguments)
        guard what == ["mil"] else { throw UsageError("expected 'bench mil'") }
        let bags = values[Self.bags], tiles = values[Self.tiles], width = values[Self.width]
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("wsi-bench-mil-\(getpid())").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var generator = SeededGenerator(seed: 1)
        let features = (0..<(tiles * width)).map { _ in generator.normal() }
        let coords: [Int64] = (0..<tiles).flatMap { [Int64($0 * 256), Int64(0)] }
        var labels = "slide_id,label,split\n"
        let writeStart = Date()
        for b in 0..<bags {
            let writer = try HDF5Writer(path: scratch + "/bag-\(b).h5")
            try writer.write("features", Matrix(rows: tiles, columns: width, values: features))
            try writer.write("coords", Matrix(rows: tiles, columns: 2, values: coords))
            try writer.close()
            labels += "bag-\(b),\(b % 2 == 0 ? "a" : "b"),train\n"
        }
        try labels.write(toFile: scratch + "/labels.csv", atomically: true, encoding: .utf8)
        print(String(format: "wrote %d bags of %d × %d features in %.1f s", bags, tiles, width, Date().timeIntervalSince(writeStart)))

        let cohort = try MILCohort(bags: try FeatureBag.discover([scratch]), labels: try SlideLabels(path: scratch + "/labels.csv"))
        var settings = MILTrainingSettings()
        settings.hidden = values[Self.hidden]
        settings.attentionWidth = values[Self.attentionWidth]
        settings.epochs = values[Self.epochs]
        let split = MILSplit(name: "bench", train: Array(0..<bags), validation: [], test: [])
        var trainer = MILTrainer(cohort: cohort, settings: settings, cacheBytes: values[Self.cacheMB] << 20)
        trainer.showProgress = false
        let (model, result) = try trainer.train(split, index: 0)
        let seconds = result.history.map { $0.seconds }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(String(format: "train-mil clam_sb L=%d Da=%d: median %.2f s per epoch of %d bags (%.0f bags/s, %.0f tiles/s; min %.2f, max %.2f s) over %d epochs",
                     model.config.hidden, model.config.attentionWidth, BenchCommand.median(seconds), bags, Double(bags) / BenchCommand.median(seconds),
                     Double(bags * tiles) / BenchCommand.median(seconds), seconds.min() ?? 0, seconds.max() ?? 0, seconds.count))
        print(String(format: "peak resident memory: %.1f MiB (one bag: %.1f MiB)", Double(usage.ru_maxrss) / 1024,
                     Double(tiles * width * 4) / 1_048_576))
        return 0
    }
}

/// `wsi bench mil-cohort`: the MIL cohort of the test suite (bags of labelled patches, 3–5 %
/// carcinoma in positives, test bags from held-out files) on the stored encoder features and, for
/// the same patches, a randomly initialised encoder of the same preset and a colour histogram:
/// what the learned features add over what any network or colour alone gives.
enum MILCohortBench {
    static let features = Option<String>(required: "features", .path, manifest: false, placeholder: "FILE",
                                         help: "features.safetensors with 'names' and 'classes' metadata (Tests/Data/mil-lc25000)")
    static let patches = Option<String>(required: "patches", .path, manifest: false, placeholder: "DIR",
                                        help: "the labelled patches those names are in, as DIR/<class>/<name> (../shared/data/labelled-lc25000)")
    static let preset = Option<String>("preset", .oneOf(SDMAEConfig.presetNames), default: "tiny96", manifest: false,
                                       help: "the random encoder's configuration (the stored features' own)")
    static let seeds = Option<Int>("seeds", 1...20, default: 3, manifest: false, help: "cohorts drawn per organ and feature set")
    static let spec = CommandSpec(name: "bench mil-cohort", summary: "attention MIL on learned features against baselines",
                                  synopsis: "--features FILE --patches DIR [options]",
                                  details: """
                                  Trains attention MIL on bags of labelled patches (the test suite's cohort) with the stored
                                  features, a random encoder and a colour histogram of the same patches, and prints held-out
                                  bag AUC, balanced accuracy and attention's instance AUC for each.
                                  """,
                                  options: [features.spec, patches.spec, preset.spec, seeds.spec])

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let (values, what) = try spec.parse(&arguments)
        guard what == ["mil-cohort"] else { throw UsageError("expected 'bench mil-cohort'") }
        let featuresPath = values[Self.features], root = values[Self.patches]
        let (tensors, metadata) = try Safetensors.read(path: featuresPath)
        guard let stored = tensors["features"], stored.shape.count == 2,
              let names = metadata["names"].flatMap({ try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }),
              let classes = metadata["classes"].flatMap({ try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }),
              names.count == stored.shape[0], classes.count == names.count else {
            throw UsageError("\(featuresPath): needs a 2-D 'features' tensor and 'names' and 'classes' metadata of as many patches")
        }
        let dataset = PatchDataset(sources: zip(classes, names).map { .file(root + "/" + $0 + "/" + $1) })
        guard let config = SDMAEConfig.preset(named: values[Self.preset]) else { throw UsageError("unknown preset") }
        var random = FeatureExtractor(encoder: SDMAEModel(config: config, seed: 0))
        random.showProgress = false
        let randomFeatures = try random.run(dataset)
        let histograms = try ColourHistogram.features(of: dataset)

        func pools(_ flat: [Float], width: Int) -> PatchCohort.Pools {
            PatchCohort.Pools(features: (0..<names.count).map { Array(flat[($0 * width)..<(($0 + 1) * width)]) }, classes: classes)
        }
        let sets = [("stored features", pools(stored.floats, width: stored.shape[1])),
                    ("random \(config.imageSize)-px encoder", pools(randomFeatures, width: config.width)),
                    ("colour histogram", pools(histograms, width: ColourHistogram.width))]
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("wsi-bench-cohort-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let seeds = values[Self.seeds]
        print("organ  features                  bag AUC   balanced acc.   attention AUC   (medians over \(seeds) cohorts)")
        for organ in ["lung", "colon"] {
            for (name, pool) in sets {
                let outcomes = try (0..<seeds).map { seed in
                    try PatchCohort.run(pool, organ: organ, folder: scratch + "/\(organ)-\(seed)-\(name.filter(\.isLetter))", seed: 11 + UInt64(seed))
                }
                print(organ.padding(toLength: 7, withPad: " ", startingAt: 0) + name.padding(toLength: 24, withPad: " ", startingAt: 0)
                      + String(format: "%9.3f   %13.3f   %13.3f", BenchCommand.median(outcomes.map(\.bagAUC)),
                               BenchCommand.median(outcomes.map(\.balancedAccuracy)), BenchCommand.median(outcomes.map(\.instanceAUC))))
            }
        }
        return 0
    }
}
