import Foundation
import NN
import SDMAE

enum PretrainCommand: Command {
    static let name = "pretrain"
    static let summary = "pretrain SD-MAE on patches (image folders and/or patch shards)"
    static let usage = """
    Usage: wsi pretrain --data DIR... --out RUN_DIR [--preset tiny|tiny96|small] [--epochs N] [--batch B] [options]

    Trains on every PNG/JPEG under each --data and every patches.shard written by 'wsi tile'.
    RUN_DIR gets metrics.csv (a line per step), checkpoints/ (safetensors, spec names, config in the
    metadata, plus the optimiser state), checkpoint.json, and model.safetensors at the end.
      --preset P            model size (default tiny)
      --epochs N            default 10;  --batch B  default 64
      --lr X                base learning rate (applied: X · batch / 256; default 1.5e-4)
      --min-lr X            floor of the cosine schedule (default 1e-6)
      --warmup-epochs X     linear warm-up (default 1)
      --p X                 weight of the self-distillation loss (default 0.2; 0 = plain MAE)
      --mask-ratio X        fraction of tokens hidden (default 0.6)
      --tau-s X, --tau-t X  student / teacher temperatures (default 0.1 / 0.04)
      --stop-gradient       detach the teacher (default: the teacher is trained by L_sd too)
      --center-mode M       probabilities (authors) | logits (DINO)
      --target-norm N       patch-channel (default) | patch (MAE)
      --colour-jitter X     colour augmentation strength (default 0)
      --checkpoint-every N  steps between checkpoints (default 100)
      --seed N              everything random derives from it (default 0)
      --workers N           decoding threads (default 2)
      --resume              continue from RUN_DIR's last checkpoint, exactly as if never stopped
      --quiet               no progress bar
    """

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let data = try arguments.strings("data")
        guard !data.isEmpty else { throw UsageError("at least one --data DIR is required") }
        guard let out = try arguments.string("out") else { throw UsageError("--out RUN_DIR is required") }
        let presetName = try arguments.string("preset") ?? "tiny"
        guard var config = SDMAEConfig.preset(named: presetName) else { throw UsageError("unknown preset '\(presetName)' (tiny, tiny96, small)") }
        var options = TrainingOptions()
        options.epochs = try arguments.int("epochs", range: 1...100_000) ?? options.epochs
        options.batchSize = try arguments.int("batch", range: 1...4096) ?? options.batchSize
        options.baseLearningRate = try arguments.double("lr", range: 0...10) ?? options.baseLearningRate
        options.minimumLearningRate = try arguments.double("min-lr", range: 0...10) ?? options.minimumLearningRate
        options.warmupEpochs = try arguments.double("warmup-epochs", range: 0...10_000) ?? options.warmupEpochs
        options.colourJitter = try arguments.double("colour-jitter", range: 0...1) ?? options.colourJitter
        options.checkpointEvery = try arguments.int("checkpoint-every", range: 1...10_000_000) ?? options.checkpointEvery
        options.seed = UInt64(try arguments.int("seed", range: 0...Int.max) ?? 0)
        options.loaderWorkers = try arguments.int("workers", range: 1...64) ?? options.loaderWorkers
        config.distillationWeight = try arguments.double("p", range: 0...1) ?? config.distillationWeight
        config.maskRatio = try arguments.double("mask-ratio", range: 0...0.99) ?? config.maskRatio
        config.studentTemperature = try arguments.double("tau-s", range: 1e-4...100) ?? config.studentTemperature
        config.teacherTemperature = try arguments.double("tau-t", range: 1e-4...100) ?? config.teacherTemperature
        config.teacherStopGradient = arguments.flag("stop-gradient")
        config.centerMode = try arguments.choice("center-mode", CenterMode.self) ?? config.centerMode
        config.targetNormalisation = try arguments.choice("target-norm", TargetNormalisation.self) ?? config.targetNormalisation
        let resume = arguments.flag("resume")
        let quiet = arguments.flag("quiet")
        guard try arguments.positionals().isEmpty else { throw UsageError("unexpected arguments") }
        if let problem = config.validationError() { throw UsageError(problem) }

        let dataset = try PatchDataset(paths: data)
        let trainer = try Trainer(config: config, options: options, dataset: dataset, runDirectory: out)
        trainer.showProgress = !quiet
        print("pretraining \(presetName) on \(dataset.count) patches: \(trainer.totalSteps) steps of \(options.batchSize)")
        let model = try trainer.run(resume: resume)
        print("done: \(model); metrics in \(out)/\(RunFiles.metrics)")
        return 0
    }
}

/// `--checkpoint CKPT [--preset P]`: checkpoints written here carry their config; a PyTorch
/// state dict needs the preset it was made with.
func loadModel(_ arguments: inout Arguments) throws -> SDMAEModel {
    guard let checkpoint = try arguments.string("checkpoint") else { throw UsageError("--checkpoint CKPT is required") }
    let preset = try arguments.string("preset")
    var fallback: SDMAEConfig?
    if let preset {
        guard let config = SDMAEConfig.preset(named: preset) else { throw UsageError("unknown preset '\(preset)'") }
        fallback = config
    }
    return try SDMAEModel.load(path: checkpoint, fallback: fallback)
}

enum EmbedCommand: Command {
    static let name = "embed"
    static let summary = "mean-pooled SD-MAE encoder features for every patch"
    static let usage = """
    Usage: wsi embed --checkpoint CKPT --data DIR... --out features.csv|features.safetensors [--batch 64] [--preset P]

    Encodes every patch (all tokens, no masking) and writes the mean of the normalised tokens:
    CSV rows 'name,f0,…', or safetensors tensor 'features' [N, D] with the names in the metadata.
    """

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let model = try loadModel(&arguments)
        let data = try arguments.strings("data")
        guard !data.isEmpty else { throw UsageError("--data DIR is required") }
        guard let out = try arguments.string("out") else { throw UsageError("--out PATH is required") }
        var extractor = FeatureExtractor(model: model)
        extractor.batchSize = try arguments.int("batch", range: 1...4096) ?? extractor.batchSize
        extractor.showProgress = !arguments.flag("quiet")
        guard try arguments.positionals().isEmpty else { throw UsageError("unexpected arguments") }
        let dataset = try PatchDataset(paths: data)
        let features = try extractor.run(dataset)
        try FeatureExtractor.write(features, names: (0..<dataset.count).map(dataset.name), width: model.config.width, to: out)
        print("\(dataset.count) features of width \(model.config.width) → \(out)")
        return 0
    }
}

enum ReconstructCommand: Command {
    static let name = "reconstruct"
    static let summary = "picture of original | masked | reconstruction for a few patches"
    static let usage = """
    Usage: wsi reconstruct --checkpoint CKPT --data DIR... --out picture.png [--count 6] [--seed 0] [--preset P]
    """

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let model = try loadModel(&arguments)
        let data = try arguments.strings("data")
        guard !data.isEmpty else { throw UsageError("--data DIR is required") }
        guard let out = try arguments.string("out") else { throw UsageError("--out PATH is required") }
        let count = try arguments.int("count", range: 1...64) ?? 6
        let seed = UInt64(try arguments.int("seed", range: 0...Int.max) ?? 0)
        guard try arguments.positionals().isEmpty else { throw UsageError("unexpected arguments") }
        let dataset = try PatchDataset(paths: data)
        var generator = SeededGenerator(seed: seed)
        let indices = (0..<min(count, dataset.count)).map { _ in Int(generator.next() % UInt64(dataset.count)) }
        let images = try FeatureExtractor.loadImages(dataset, indices: indices, size: model.config.imageSize, workers: 2)
        try ReconstructionPicture.render(model: model, images: images, batch: indices.count, seed: seed).write(to: out)
        print("reconstructions of \(indices.count) patches → \(out)")
        return 0
    }
}
