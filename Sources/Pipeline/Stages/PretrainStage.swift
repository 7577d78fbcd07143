import Foundation
import SDMAE

/// SD-MAE pretraining on every slide's patches (see `wsi pretrain`).
struct PretrainStage: Stage {
    static let kind = "pretrain"
    static let scope = StageScope.global
    static let summary = "pretrain SD-MAE on the tiles' patches"
    static let parameters = [
        ParameterSpec("preset", .string, default: .string("tiny"), help: "tiny | tiny96 | small"),
        ParameterSpec("epochs", .int, default: .int(10), help: "passes over the patches"),
        ParameterSpec("batch", .int, default: .int(64), help: "batch size"),
        ParameterSpec("lr", .double, default: .double(1.5e-4), help: "base learning rate (× batch / 256)"),
        ParameterSpec("min_lr", .double, default: .double(1e-6), help: "floor of the cosine schedule"),
        ParameterSpec("warmup_epochs", .double, default: .double(1), help: "linear warm-up"),
        ParameterSpec("p", .double, default: .double(0.2), help: "weight of the self-distillation loss"),
        ParameterSpec("mask_ratio", .double, default: .double(0.6), help: "fraction of tokens hidden"),
        ParameterSpec("stop_gradient", .bool, default: .bool(false), help: "detach the teacher"),
        ParameterSpec("seed", .int, default: .int(0), help: "seed of everything random"),
        ParameterSpec("checkpoint_every", .int, default: .int(100), help: "steps between checkpoints"),
    ]
    static let inputs = [InputSpec("patches", help: "tile stage(s) or folders of patches")]
    static let resumesPartialOutput = true

    let config: SDMAEConfig
    let options: TrainingOptions

    init(_ p: StageParameters) throws {
        let preset = p.string("preset") ?? "tiny"
        guard var config = SDMAEConfig.preset(named: preset) else { throw StageError.failed("unknown preset '\(preset)' (tiny, tiny96, small)") }
        config.distillationWeight = p.double("p") ?? config.distillationWeight
        config.maskRatio = p.double("mask_ratio") ?? config.maskRatio
        config.teacherStopGradient = p.bool("stop_gradient")
        if let problem = config.validationError() { throw StageError.failed(problem) }
        var options = TrainingOptions()
        options.epochs = p.int("epochs") ?? options.epochs
        options.batchSize = p.int("batch") ?? options.batchSize
        options.baseLearningRate = p.double("lr") ?? options.baseLearningRate
        options.minimumLearningRate = p.double("min_lr") ?? options.minimumLearningRate
        options.warmupEpochs = p.double("warmup_epochs") ?? options.warmupEpochs
        options.seed = UInt64(max(0, p.int("seed") ?? 0))
        options.checkpointEvery = max(1, p.int("checkpoint_every") ?? options.checkpointEvery)
        guard options.epochs >= 1, options.batchSize >= 1 else { throw StageError.failed("epochs and batch must be at least 1") }
        self.config = config
        self.options = options
    }

    func run(_ context: StageContext) throws {
        let dataset = try PatchDataset(paths: try context.input("patches"))
        let trainer = try Trainer(config: config, options: options, dataset: dataset, runDirectory: context.output)
        trainer.showProgress = context.showProgress
        // A partial folder left by a killed run holds its checkpoints: continue from them.
        try trainer.run(resume: true)
    }
}
