import Foundation
import MIL
import NN
import Pipeline
import Storage

/// `wsi bench mil`: train-mil's cost on a cohort of synthetic bags written to disk as HDF5, so
/// reading is measured with the compute (the values do not change the arithmetic).
enum MILBench {
    static let spec = CommandSpec(
        name: "bench mil", summary: "attention-MIL training throughput", synopsis: "[options]",
        options: [
            ParameterSpec("bags", .int(2...100_000), default: .int(1000), manifest: false, help: "bags in the cohort"),
            ParameterSpec("tiles", .int(1...1_000_000), default: .int(2000), manifest: false, help: "tiles per bag"),
            ParameterSpec("width", .int(1...8192), default: .int(192), manifest: false, help: "features per tile"),
            ParameterSpec("epochs", .int(1...1000), default: .int(3), manifest: false, help: "timed epochs"),
            ParameterSpec("hidden", .int(8...4096), manifest: false, help: "L (default: as train-mil, the width, at most 512)"),
            ParameterSpec("attention_width", .int(4...4096), manifest: false, help: "Da (default: L/2)"),
            ParameterSpec("cache_mb", .int(0...1_000_000), default: .int(0), manifest: false,
                          help: "bags kept in memory (0: every bag read from disk every time, memory bounded by the largest bag)"),
        ])

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let (values, what) = try spec.parse(&arguments)
        guard what == ["mil"] else { throw UsageError("expected 'bench mil'") }
        let bags = values.int("bags") ?? 1000, tiles = values.int("tiles") ?? 2000, width = values.int("width") ?? 192
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
        settings.hidden = values.int("hidden")
        settings.attentionWidth = values.int("attention_width")
        settings.epochs = values.int("epochs") ?? 3
        let split = MILSplit(name: "bench", train: Array(0..<bags), validation: [], test: [])
        var trainer = MILTrainer(cohort: cohort, settings: settings, cacheBytes: (values.int("cache_mb") ?? 0) << 20)
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
