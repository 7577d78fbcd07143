import Cluster
import Annotations
import Foundation
import NN
import Pipeline
import SDMAE
import Tiling
import ViT

struct BenchCommand: Command {
    /// The tile stage's own options, so the benchmark measures what `wsi tile` runs; patches are
    /// not stored unless asked (the encoder is what a format measures).
    static let tileSpec = CommandSpec(
        name: "bench tile", summary: "tiling throughput", synopsis: "SLIDE... [--runs 5] [tile options]",
        options: [ParameterSpec("runs", .int(1...1000), default: .int(5), manifest: false, help: "repetitions per slide")]
            + TileStage.parameters.map { spec in
                var spec = spec
                if spec.name == "format" { spec.defaultValue = .string(PatchFormat.none.rawValue) }
                return spec
            })
    static let modelSpec = CommandSpec(
        name: "bench train|embed", summary: "model throughput", synopsis: "[options]",
        options: [
            ParameterSpec("preset", .choice(SDMAEConfig.presetNames), default: .string("tiny"), manifest: false, help: "model size"),
            ParameterSpec("batch", .int(1...4096), default: .int(64), manifest: false, help: "batch size"),
            ParameterSpec("mask_ratio", .double(0...0.99), default: .double(0.75), manifest: false, help: "fraction of tokens hidden (train)"),
            ParameterSpec("steps", .int(1...1000), default: .int(6), manifest: false, help: "timed steps after one warm-up step"),
            ParameterSpec("precision", .choice(Precision.allCases.map(\.rawValue)), default: .string("fp32"), manifest: false,
                          help: "matrix-product arithmetic"),
            ParameterSpec("encoder", .choice(EncoderPresets.names), manifest: false,
                          help: "embed: a published encoder at its real size with random weights, instead of an SD-MAE preset"),
        ])

    let name = "bench"
    let summary = "measure throughput (release build): bench tile | train | embed | matmul | mil | mil-cohort | tiff"
    var usage: String {
        """
        Usage: wsi bench tile SLIDE... [--runs 5] [options of 'wsi tile']
               wsi bench train|embed|matmul [--preset tiny] [--batch 64] [--mask-ratio 0.75] [--steps 6]
               wsi bench embed --encoder uni_v1 [--batch 16] [--precision bf16] [--steps 6]
               wsi bench mil [--bags 1000] [--tiles 2000] [--width 192] [--epochs 3] [--cache-mb 0]
               wsi bench mil-cohort --features FILE --patches DIR [--preset tiny96] [--seeds 3]
               wsi bench tiff [--width 13329] [--height 10701] [--downsample 1] [--compression deflate]

        train/embed time SD-MAE steps (forward, backward, AdamW, centre) or encoder inference on
        random images (compute does not depend on content) after one warm-up step, and report the
        median images per second over the steps; embed also gives the rate of its matrix products
        in GFLOP/s. embed --encoder runs a published encoder's architecture (random weights of the
        real size) on its input size, as `wsi features` does; Tests/Benchmarks/torch_encoder_bench.py
        times timm's model the way TRIDENT runs it, for the side-by-side figure. matmul times the encoder's linear layers alone at its shapes (batch × tokens
        rows) in the chosen precision: the ceiling the layers' products can reach on this machine.

        tile cuts each slide --runs times (patches read, resampled and colour-checked; --format none
        unless given) and reports medians over runs: whole-slide seconds, the thumbnail + mask
        seconds, and the tile phase's rate in tissue tiles per second; then the peak resident
        memory. Build with 'swift build -c release' first: debug builds are many times slower.

        mil writes a cohort of random bags as HDF5 files and times train-mil's epochs (one bag per
        step, forward, backward, AdamW), reading every bag from disk unless --cache-mb keeps them.

        Options of bench train|embed:
        \(CommandSpec.optionLines(Self.modelSpec.options))

        Options of bench mil:
        \(CommandSpec.optionLines(MILBench.spec.options))

        mil-cohort trains attention MIL on bags of labelled patches (the test suite's cohort) with
        the stored features, a random encoder and a colour histogram of the same patches, and prints
        held-out bag AUC, balanced accuracy and attention's instance AUC for each.

        Options of bench mil-cohort:
        \(CommandSpec.optionLines(MILCohortBench.spec.options))

        tiff writes a full-resolution RGBA heatmap (or, with jpeg, colours over white) of a random
        score grid on a slide of the given size as a pyramidal TIFF, and reports time and memory.

        Options of bench tiff:
        \(CommandSpec.optionLines(TIFFBench.spec.options))
        """
    }

    /// Each subcommand and what runs it; `run` dispatches on the first word.
    static let subcommands: [(names: [String], run: @Sendable (inout Arguments) throws -> Int32)] = [
        (["tile"], TileBench.run), (["train", "embed", "matmul"], ModelBench.run), (["mil"], MILBench.run),
        (["mil-cohort"], MILCohortBench.run), (["tiff"], TIFFBench.run),
    ]

    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        guard let first = arguments.first, let subcommand = Self.subcommands.first(where: { $0.names.contains(first) }) else {
            throw UsageError("expected one of " + Self.subcommands.flatMap(\.names).joined(separator: ", "))
        }
        return try subcommand.run(&arguments)
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

enum ModelBench {
    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let (values, what) = try BenchCommand.modelSpec.parse(&arguments)
        let presetName = values.string("preset") ?? "tiny"
        guard var config = SDMAEConfig.preset(named: presetName) else { throw UsageError("unknown preset '\(presetName)'") }
        config.maskRatio = values.double("mask_ratio") ?? 0.75
        let batch = values.int("batch") ?? 64
        let steps = values.int("steps") ?? 6
        guard what.count == 1 else { throw UsageError("expected 'train', 'embed' or 'matmul'") }
        let (precision, notice) = Precision.resolve(values.string("precision").flatMap(Precision.init) ?? .fp32)
        if let notice { print(notice) }
        if let encoder = values.string("encoder") {
            guard what[0] == "embed", let preset = EncoderPresets.named(encoder) else { throw UsageError("--encoder goes with 'embed'") }
            return try embed(preset, batch: batch, precision: precision, steps: steps)
        }
        if what[0] == "matmul" { return try matmul(config, rows: batch * config.tokens, precision: precision, steps: steps) }
        let model = SDMAEModel(config: config, seed: 0)
        model.precision = precision
        var generator = SeededGenerator(seed: 1)
        let images = (0..<(batch * 3 * config.imageSize * config.imageSize)).map { _ in generator.uniform() }
        let optimiser = AdamW(parameters: model.parameters, learningRate: 1e-4)
        var rates: [Double] = []
        for step in 0...steps {
            let start = Date()
            if what[0] == "train" {
                let mask = TokenMask.random(batch: batch, tokens: config.tokens, masked: config.maskedTokens, using: &generator)
                _ = try images.withUnsafeBufferPointer { try model.forward(images: $0.baseAddress!, batch: batch, mask: mask) }
                optimiser.zeroGradients()
                try model.backward()
                optimiser.update()
                model.refreshLowPrecisionWeights()
                model.updateCenter()
            } else {
                _ = try images.withUnsafeBufferPointer { try model.features(images: $0.baseAddress!, batch: batch) }
            }
            if step > 0 { rates.append(Double(batch) / Date().timeIntervalSince(start)) }
        }
        print(String(format: "%@ %@ %@ batch %d mask %.2f: median %.1f img/s (min %.1f, max %.1f) over %d steps; %d parameters",
                     what[0], presetName, precision.rawValue, batch, config.maskRatio, BenchCommand.median(rates), rates.min() ?? 0, rates.max() ?? 0, steps,
                     model.parameters.reduce(0) { $0 + $1.count }))
        if what[0] == "embed" {
            print(String(format: "matrix products: %.2f GFLOP per image, %.1f GFLOP/s", encoderFLOPs(config) / 1e9,
                         encoderFLOPs(config) * BenchCommand.median(rates) / 1e9))
        }
        return 0
    }

    /// A published encoder's inference on random pixels, as `wsi features` runs it.
    static func embed(_ preset: EncoderPreset, batch: Int, precision: Precision, steps: Int) throws -> Int32 {
        let loadStart = Date()
        let model = VisionTransformer(config: preset.config, seed: 0)
        model.precision = precision
        let side = preset.config.transform.outputSize
        var generator = SeededGenerator(seed: 1)
        let images = (0..<(batch * 3 * side * side)).map { _ in generator.normal() }
        let built = Date().timeIntervalSince(loadStart)
        var rates: [Double] = []
        for step in 0...steps {
            let start = Date()
            _ = try images.withUnsafeBufferPointer { try model.features(images: $0.baseAddress!, batch: batch) }
            if step > 0 { rates.append(Double(batch) / Date().timeIntervalSince(start)) }
        }
        let flops = encoderFLOPs(preset.config, hidden: model.hiddenWidth)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(String(format: "embed %@ %@ batch %d at %d px: median %.2f img/s (min %.2f, max %.2f) over %d steps; %.1f M parameters, built in %.1f s",
                     preset.name, precision.rawValue, batch, side, BenchCommand.median(rates), rates.min() ?? 0, rates.max() ?? 0, steps,
                     Double(preset.parameterCount) / 1e6, built))
        print(String(format: "matrix products: %.2f GFLOP per image, %.1f GFLOP/s; peak resident memory %.0f MiB", flops / 1e9,
                     flops * BenchCommand.median(rates) / 1e9, Double(usage.ru_maxrss) / 1024))
        return 0
    }

    /// Products of a ViT on one image: patch embedding, then per block qkv, q·kᵀ, attention·v,
    /// projection and the MLP's two layers (SwiGLU's fc2 reads half of fc1's width).
    static func encoderFLOPs(_ config: ViTConfig, hidden: Int) -> Double {
        let n = Double(config.prefixTokens + config.inputGrid * config.inputGrid), d = Double(config.width)
        let patches = Double(config.inputGrid * config.inputGrid), p = Double(config.patchSize)
        let mlp = Double(hidden) * d + (config.mlp == .swigluPacked ? Double(hidden) / 2 : Double(hidden)) * d
        return 2 * patches * 3 * p * p * d + Double(config.depth) * (2 * n * (4 * d * d + mlp) + 4 * n * n * d)
    }

    /// Floating-point operations of the encoder's matrix products on one whole image: patch
    /// embedding, and per block qkv, q·kᵀ, attention·v, projection and the two MLP layers.
    static func encoderFLOPs(_ config: SDMAEConfig) -> Double {
        let n = Double(config.tokens), d = Double(config.width)
        return 2 * n * Double(config.patchValues) * d + Double(config.depth) * (2 * n * 12 * d * d + 4 * n * n * d)
    }

    /// Each of the encoder's linear-layer shapes, forward only, timed alone.
    static func matmul(_ config: SDMAEConfig, rows: Int, precision: Precision, steps: Int) throws -> Int32 {
        let d = config.width
        var generator = SeededGenerator(seed: 1)
        for (name, inputs, outputs) in [("qkv", d, 3 * d), ("proj", d, d), ("fc1", d, 4 * d), ("fc2", 4 * d, d)] {
            let layer = Linear(name, inputs: inputs, outputs: outputs)
            layer.weight.initialiseXavierUniform(using: &generator)
            layer.precision = precision
            layer.refreshLowPrecisionWeights()
            let x = (0..<(rows * inputs)).map { _ in generator.uniform() }
            var seconds: [Double] = []
            try x.withUnsafeBufferPointer { x in
                for step in 0...steps {
                    let start = Date()
                    try layer.forward(x.baseAddress!, rows: rows)
                    if step > 0 { seconds.append(Date().timeIntervalSince(start)) }
                }
            }
            print(String(format: "%@ %@ %d x %d -> %d: %.1f GFLOP/s", name, precision.rawValue, rows, inputs, outputs,
                         2 * Double(rows * inputs * outputs) / BenchCommand.median(seconds) / 1e9))
        }
        return 0
    }
}

/// Tiling throughput: each slide cut `--runs` times with the tile stage's own options.
enum TileBench {
    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let (values, positionals) = try BenchCommand.tileSpec.parse(&arguments)
        let inputs = Array(positionals.dropFirst())  // after 'tile'
        guard !inputs.isEmpty else { throw UsageError("expected at least one SLIDE") }
        let runs = values.int("runs") ?? 5
        var options: TilingOptions
        do { options = try TileStage(values).options } catch let error as StageError { throw UsageError("\(error)") }
        options.showProgress = false
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("wsi-bench-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        print("slide                              tiles  slide s  mask s  tile s  tiles/s (min..max)")
        let annotationFiles = try values.string("annotations").map(AnnotationSet.files) ?? []
        for path in inputs {
            options.annotations = try AnnotationSet.file(for: path, among: annotationFiles).map(AnnotationSet.read)
            var summaries: [TilingSummary] = []
            for run in 0..<runs {
                try summaries.append(TileExtractor(options: options).run(slidePath: path, outputDirectory: "\(scratch)/\(run)"))
                try? FileManager.default.removeItem(atPath: "\(scratch)/\(run)")
            }
            let tiles = summaries[0].tissueTiles
            let rates = summaries.map { Double($0.tissueTiles) / $0.tileSeconds }
            let name = URL(fileURLWithPath: path).lastPathComponent
            print(name.padding(toLength: 34, withPad: " ", startingAt: 0)
                  + String(format: " %5d  %7.3f  %6.3f  %6.3f  %7.1f (%.1f..%.1f)", tiles, BenchCommand.median(summaries.map(\.seconds)),
                           BenchCommand.median(summaries.map(\.maskSeconds)), BenchCommand.median(summaries.map(\.tileSeconds)), BenchCommand.median(rates),
                           rates.min() ?? 0, rates.max() ?? 0))
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(String(format: "peak resident memory: %.1f MiB (threads %d, format %@)", Double(usage.ru_maxrss) / 1024, options.threads, options.format.rawValue))
        return 0
    }
}
