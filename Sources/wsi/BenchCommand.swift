import Cluster
import Annotations
import Foundation
import NN
import Pipeline
import SDMAE
import Tiling
import ViT

struct BenchCommand: Command {
    let name = "bench"
    let summary = "measure throughput (release build): bench tile | train | embed | matmul | mil | mil-cohort | tiff"

    /// Each subcommand, its declaration and what runs it; `run` dispatches on the first word.
    static let subcommands: [(names: [String], spec: CommandSpec, run: @Sendable (inout Arguments) throws -> Int32)] = [
        (["tile"], TileBench.spec, TileBench.run), (["train", "embed", "matmul"], ModelBench.spec, ModelBench.run),
        (["mil"], MILBench.spec, MILBench.run), (["mil-cohort"], MILCohortBench.spec, MILCohortBench.run),
        (["tiff"], TIFFBench.spec, TIFFBench.run),
    ]

    var usage: String {
        "Usage: wsi bench SUBCOMMAND [options]\n\nBuild with 'swift build -c release' first: debug builds are many times slower.\n\n"
            + Self.subcommands.map(\.spec.usage).joined(separator: "\n")
    }

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

/// SD-MAE training and encoder inference on random pixels (compute does not depend on content).
enum ModelBench {
    static let preset = Option<String>("preset", .oneOf(SDMAEConfig.presetNames), default: "tiny", manifest: false, help: "model size")
    static let batch = Option<Int>("batch", 1...4096, default: 64, manifest: false, help: "batch size")
    static let maskRatio = Option<Double>("mask_ratio", 0...0.99, default: 0.75, manifest: false, help: "fraction of tokens hidden (train)")
    static let steps = Option<Int>("steps", 1...1000, default: 6, manifest: false, help: "timed steps after one warm-up step")
    static let precision = Option<Precision>("precision", default: .fp32, manifest: false, help: "matrix-product arithmetic")
    static let encoder = Option<String?>("encoder", .oneOf(EncoderPresets.names), manifest: false,
                                         help: "a published encoder at its real size with random weights: embed runs it as `wsi features` does, "
                                             + "train adapts it as `pretrain --init-encoder` does")
    static let spec = CommandSpec(
        name: "bench train|embed|matmul", summary: "model throughput", synopsis: "[options]",
        details: """
        train/embed time SD-MAE steps (forward, backward, AdamW, centre) or encoder inference on
        random images after one warm-up step, and report the median images per second over the
        steps; embed also gives the rate of its matrix products in GFLOP/s. embed --encoder runs a
        published encoder's architecture (random weights of the real size) on its input size, as
        `wsi features` does; Tests/Benchmarks/torch_encoder_bench.py times timm's model the way
        TRIDENT runs it, for the side-by-side figure. matmul times the encoder's linear layers
        alone at its shapes (batch × tokens rows) in the chosen precision: the ceiling the layers'
        products can reach on this machine.
        """,
        options: [preset.spec, batch.spec, maskRatio.spec, steps.spec, precision.spec, encoder.spec])

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let (values, what) = try spec.parse(&arguments)
        let batch = values[Self.batch]
        let steps = values[Self.steps]
        guard what.count == 1 else { throw UsageError("expected 'train', 'embed' or 'matmul'") }
        let (precision, notice) = Precision.resolve(values[Self.precision])
        if let notice { print(notice) }
        if let name = values[Self.encoder] {
            guard let preset = EncoderPresets.named(name), what[0] != "matmul" else { throw UsageError("--encoder goes with 'embed' or 'train'") }
            if what[0] == "embed" { return try embed(preset, batch: batch, precision: precision, steps: steps) }
        }
        let (model, name) = try benchModel(values)
        if what[0] == "matmul" { return try matmul(model.config, rows: batch * model.config.tokens, precision: precision, steps: steps) }
        model.precision = precision
        let rates = try time(model, train: what[0] == "train", batch: batch, steps: steps)
        let config = model.config
        print(String(format: "%@ %@ %@ batch %d mask %.2f: median %.1f img/s (min %.1f, max %.1f) over %d steps; %d parameters",
                     what[0], name, precision.rawValue, batch, config.maskRatio, BenchCommand.median(rates), rates.min() ?? 0, rates.max() ?? 0, steps,
                     model.parameters.reduce(0) { $0 + $1.count }))
        if what[0] == "embed" {
            print(String(format: "matrix products: %.2f GFLOP per image, %.1f GFLOP/s", encoderFLOPs(config) / 1e9,
                         encoderFLOPs(config) * BenchCommand.median(rates) / 1e9))
        }
        return 0
    }

    /// An SD-MAE preset, or (train --encoder) SD-MAE adapting a published encoder of its real
    /// size with random weights, as `pretrain --init-encoder` builds it.
    static func benchModel(_ values: StageParameters) throws -> (SDMAEModel, String) {
        if let name = values[Self.encoder], let preset = EncoderPresets.named(name) {
            var config = SDMAEConfig.adapting(EncoderStart(name: preset.name, config: preset.config))
            config.maskRatio = values[Self.maskRatio]
            return (SDMAEModel(config: config, published: VisionTransformer(config: preset.config, seed: 0, trains: true)), "adapting " + preset.name)
        }
        guard var config = SDMAEConfig.preset(named: values[Self.preset]) else { throw UsageError("unknown preset '\(values[Self.preset])'") }
        config.maskRatio = values[Self.maskRatio]
        return (SDMAEModel(config: config, seed: 0), values[Self.preset])
    }

    /// Images per second of each step after a warm-up one: a training step (forward, backward,
    /// AdamW, centre) or the features of every token.
    static func time(_ model: SDMAEModel, train: Bool, batch: Int, steps: Int) throws -> [Double] {
        let config = model.config
        var generator = SeededGenerator(seed: 1)
        let images = (0..<(batch * 3 * config.imageSize * config.imageSize)).map { _ in generator.uniform() }
        let optimiser = AdamW(parameters: model.parameters, learningRate: 1e-4)
        var rates: [Double] = []
        for step in 0...steps {
            let start = Date()
            if train {
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
        return rates
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
    static let runs = Option<Int>("runs", 1...1000, default: 5, manifest: false, help: "repetitions per slide")
    /// The tile stage's own options, so the benchmark measures what `wsi tile` runs; patches are
    /// not stored unless asked (the encoder is what a format measures).
    static let spec = CommandSpec(
        name: "bench tile", summary: "tiling throughput", synopsis: "SLIDE... [options]",
        details: """
        Cuts each slide --runs times (patches read, resampled and colour-checked; --format none
        unless given) and reports medians over runs: whole-slide seconds, the thumbnail + mask
        seconds, and the tile phase's rate in tissue tiles per second; then the peak resident memory.
        """,
        options: [runs.spec] + TileStage.parameters.map { spec in
            var spec = spec
            if spec.name == TileStage.format.name { spec.defaultValue = .string(PatchFormat.none.rawValue) }
            return spec
        })

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let (values, positionals) = try spec.parse(&arguments)
        let inputs = Array(positionals.dropFirst())  // after 'tile'
        guard !inputs.isEmpty else { throw UsageError("expected at least one SLIDE") }
        let runs = values[Self.runs]
        var options: TilingOptions
        do { options = try TileStage(values).options } catch let error as StageError { throw UsageError("\(error)") }
        options.showProgress = false
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("wsi-bench-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        print("slide                              tiles  slide s  mask s  tile s  tiles/s (min..max)")
        let annotationFiles = try values[TileStage.annotations].map(AnnotationSet.files) ?? []
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
