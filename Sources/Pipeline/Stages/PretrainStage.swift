import Cluster
import Foundation
import NN
import SDMAE
import Tiling

/// SD-MAE pretraining on every slide's patches.
struct PretrainStage: Stage {
    static let kind = "pretrain"
    static let scope = StageScope.global
    static let summary = "pretrain SD-MAE on patches (tile stage folders, image folders, shards)"
    private static let training = TrainingOptions()
    private static let model = SDMAEConfig.tiny
    static let parameters = [
        ParameterSpec("recipe", .choice(PretrainRecipe.allCases.map(\.rawValue)), default: .string(PretrainRecipe.cpu.rawValue),
                      help: "a named set of the options marked 'by recipe'; an option given explicitly wins"),
        ParameterSpec("preset", .choice(SDMAEConfig.presetNames), default: .string("tiny"), help: "model size"),
        ParameterSpec("image_size", .int(8...2048), help: "input side in pixels (default: the preset's, 224 for tiny, 96 for tiny96)"),
        ParameterSpec("patch_size", .int(1...256), help: "side of the square each token covers (default: the preset's, 16 for tiny, 8 for tiny96)"),
        ParameterSpec("init", .choice(WeightInitialisation.allCases.map(\.rawValue)), default: .string(WeightInitialisation.xavier.rawValue),
                      help: "Linear weights of the new model: Xavier-uniform (MAE) or truncated normal σ 0.02 (timm's ViT, DeiT; the patch embedding stays Xavier)"),
        ParameterSpec("epochs", .int(1...100_000), default: .int(training.epochs), help: "passes over the patches"),
        ParameterSpec("batch", .int(1...4096), default: .int(training.batchSize),
                      help: "batch size; under mpirun/srun the global batch, split evenly over the ranks"),
        ParameterSpec("lr", .double(0...10), help: "base learning rate (applied: lr · batch / 256); " + PretrainRecipe.describe("lr")),
        ParameterSpec("min_lr", .double(0...10), default: .double(training.minimumLearningRate), help: "floor of the cosine schedule"),
        ParameterSpec("warmup_epochs", .double(0...10_000), default: .double(training.warmupEpochs), help: "linear warm-up"),
        ParameterSpec("p", .double(0...1), help: "weight of the self-distillation loss (0: plain MAE); " + PretrainRecipe.describe("p")),
        ParameterSpec("mask_ratio", .double(0...0.99), help: "fraction of tokens hidden; " + PretrainRecipe.describe("mask_ratio")),
        ParameterSpec("tau_s", .double(1e-4...100), default: .double(model.studentTemperature), help: "student temperature"),
        ParameterSpec("tau_t", .double(1e-4...100), default: .double(model.teacherTemperature), help: "teacher temperature"),
        ParameterSpec("tau_t_warmup_from", .double(1e-4...100),
                      help: "DINO's teacher-temperature warm-up: τt rises linearly from this value to --tau-t (default: no warm-up)"),
        ParameterSpec("tau_t_warmup_epochs", .double(0...10_000), default: .double(training.teacherTemperatureWarmupEpochs),
                      help: "length of the teacher-temperature warm-up"),
        ParameterSpec("prototypes", .int(1...262_144), help: "prototypes K of the self-distillation heads (default: the preset's, 1024 for tiny)"),
        ParameterSpec("stop_gradient", .bool, default: .bool(model.teacherStopGradient), help: "detach the teacher (default: L_sd trains it too)"),
        ParameterSpec("teacher_targets", .choice(TeacherTargets.allCases.map(\.rawValue)),
                      help: "teacher distribution: centred softmax (the authors), Sinkhorn-balanced over the batch as a fixed target "
                          + "(SwAV, DINOv2), or swapped: each head predicts the other's Sinkhorn codes (SwAV); "
                          + PretrainRecipe.describe("teacher_targets")),
        ParameterSpec("mean_entropy_weight", .double(0...10), default: .double(model.meanEntropyWeight),
                      help: "λ of MSN's mean-entropy term: L_sd − λ·H(batch mean) of each head L_sd trains, against every image getting one answer"),
        ParameterSpec("center_mode", .choice(CenterMode.allCases.map(\.rawValue)), default: .string(model.centerMode.rawValue),
                      help: "what the teacher centre tracks: probabilities (the authors) or logits (DINO)"),
        ParameterSpec("target_norm", .choice(TargetNormalisation.allCases.map(\.rawValue)),
                      help: "reconstruction target: normalised per patch and channel (spec), per patch (MAE), or the pixels as they are; "
                          + PretrainRecipe.describe("target_norm")),
        ParameterSpec("colour_jitter", .double(0...1), default: .double(training.colourJitter), help: "colour augmentation strength"),
        ParameterSpec("checkpoint_every", .int(1...10_000_000), default: .int(training.checkpointEvery), help: "steps between checkpoints"),
        ParameterSpec("keep_checkpoints", .bool, default: .bool(false), help: "keep every checkpoint, not only the newest (for learning curves)"),
        ParameterSpec("seed", .int(0...Int(Int32.max)), default: .int(Int(training.seed)), help: "seed of everything random"),
        ParameterSpec("workers", .int(1...64), default: .int(training.loaderWorkers), manifest: false, help: "patch decoding threads"),
        ParameterSpec("precision", .choice(Precision.allCases.map(\.rawValue)), default: .string("fp32"),
                      help: "matrix products: bf16 on CPUs with AVX-512 BF16 is faster (measured in docs/precision.md) and learns the same features; fp32 gives the same model on every CPU"),
    ]
    static let inputs = [InputSpec("patches", multiple: true, reads: ["tile"], help: "tile stage folders, folders of PNG/JPEG patches, or patch shards")]
    static let outputs = [
        OutputSpec(RunFiles.finalModel, "the trained model: spec names, config in the metadata"),
        OutputSpec(RunFiles.metrics, "a line per step: loss parts, teacher entropy, gradient norm, images/s"),
        OutputSpec(RunFiles.checkpoints + "/", "step-N.safetensors and step-N.optimizer.safetensors"),
        OutputSpec(RunFiles.latest, "the newest complete checkpoint"),
    ]
    static let resumesPartialOutput = true
    static let runsOnEveryRank = true

    let config: SDMAEConfig
    let options: TrainingOptions

    init(_ given: StageParameters) throws {
        // The recipe's values fill what was not given; an explicit option wins.
        let recipe = given.string("recipe").flatMap(PretrainRecipe.init) ?? .cpu
        let p = StageParameters(recipe.values.merging(given.values) { _, explicit in explicit })
        let preset = p.string("preset") ?? "tiny"
        guard var config = SDMAEConfig.preset(named: preset) else { throw StageError.invalid("unknown preset '\(preset)'") }
        config.imageSize = p.int("image_size") ?? config.imageSize
        config.patchSize = p.int("patch_size") ?? config.patchSize
        config.distillationWeight = p.double("p") ?? config.distillationWeight
        config.prototypes = p.int("prototypes") ?? config.prototypes
        config.maskRatio = p.double("mask_ratio") ?? config.maskRatio
        config.studentTemperature = p.double("tau_s") ?? config.studentTemperature
        config.teacherTemperature = p.double("tau_t") ?? config.teacherTemperature
        config.teacherStopGradient = p.bool("stop_gradient")
        config.centerMode = p.string("center_mode").flatMap(CenterMode.init) ?? config.centerMode
        config.teacherTargets = p.string("teacher_targets").flatMap(TeacherTargets.init) ?? config.teacherTargets
        config.meanEntropyWeight = p.double("mean_entropy_weight") ?? config.meanEntropyWeight
        config.targetNormalisation = p.string("target_norm").flatMap(TargetNormalisation.init) ?? config.targetNormalisation
        if let problem = config.validationError() { throw StageError.invalid(problem) }
        var options = TrainingOptions()
        options.epochs = p.int("epochs") ?? options.epochs
        options.batchSize = p.int("batch") ?? options.batchSize
        options.baseLearningRate = p.double("lr") ?? options.baseLearningRate
        options.minimumLearningRate = p.double("min_lr") ?? options.minimumLearningRate
        options.warmupEpochs = p.double("warmup_epochs") ?? options.warmupEpochs
        options.colourJitter = p.double("colour_jitter") ?? options.colourJitter
        options.teacherTemperatureWarmupStart = p.double("tau_t_warmup_from")
        options.teacherTemperatureWarmupEpochs = p.double("tau_t_warmup_epochs") ?? options.teacherTemperatureWarmupEpochs
        // Either half of the warm-up alone would silently do nothing.
        if options.teacherTemperatureWarmupStart != nil, options.teacherTemperatureWarmupEpochs == 0 {
            throw StageError.invalid("tau_t_warmup_from needs tau_t_warmup_epochs above 0 (the length of the warm-up)")
        }
        if options.teacherTemperatureWarmupStart == nil, options.teacherTemperatureWarmupEpochs > 0 {
            throw StageError.invalid("tau_t_warmup_epochs needs tau_t_warmup_from (the teacher temperature the warm-up starts at)")
        }
        options.checkpointEvery = p.int("checkpoint_every") ?? options.checkpointEvery
        options.keepsCheckpoints = p.bool("keep_checkpoints")
        options.seed = UInt64(p.int("seed") ?? 0)
        options.loaderWorkers = p.int("workers") ?? options.loaderWorkers
        // fp32 stays unrecorded (nil), as in runs made before the option existed.
        if p.string("precision") == "bf16" { options.precision = chosenPrecision("bf16") }
        // Xavier stays unrecorded (nil), as in runs made before the option existed.
        if let scheme = p.string("init").flatMap(WeightInitialisation.init), scheme != .xavier { options.initialisation = scheme }
        self.config = config
        self.options = options
    }

    func run(_ context: StageContext) throws -> String {
        // Every rank checks in, so one that cannot read the patches stops them all here.
        let trainer = try context.group.agree(Result {
            let dataset = try PatchDataset(paths: try context.input("patches"))
            return try Trainer(config: config, options: options, dataset: dataset, runDirectory: context.output, group: context.group)
        }, what: "preparing pretraining")
        trainer.showProgress = context.showProgress
        // A partial folder left by a killed run holds its checkpoints: continue from them.
        _ = try trainer.run(resume: true)
        return "\(trainer.totalSteps) steps of \(options.batchSize) on \(trainer.patches) patches"
            + (context.group.size > 1 ? " over \(context.group.size) ranks" : "")
    }

    static func report(_ location: StageOutputLocation) -> ReportPart {
        guard location.slide == nil else { return ReportPart() }
        return ReportPart(html: "<h2>Pretraining: \(escapeHTML(location.stageID))</h2>"
                          + LossCurves.svg(metricsPath: location.path + "/" + RunFiles.metrics))
    }
}

/// Named sets of pretraining options. `authors` is the paper's code as the project's spec states
/// it; `cpu`, the default, is what grouped evaluation chose for CPU budgets (docs/experiments/recipe-search.md, "Choosing the
/// default recipe", with the runs that decided it).
enum PretrainRecipe: String, CaseIterable, Sendable {
    case cpu
    case authors

    var values: [String: ParameterValue] {
        switch self {
        case .cpu:
            return ["lr": .double(1.2e-2), "p": .double(0), "mask_ratio": .double(0.6), "teacher_targets": .string("centred"),
                    "target_norm": .string("none")]
        case .authors:
            return ["lr": .double(1.5e-4), "p": .double(0.2), "mask_ratio": .double(0.6), "teacher_targets": .string("centred"),
                    "target_norm": .string("patch-channel")]
        }
    }

    /// "by recipe: cpu 0.2, authors 0.2", for the help of a recipe-set option.
    static func describe(_ name: String) -> String {
        "by recipe: " + allCases.map { "\($0.rawValue) \($0.values[name].map { "\($0)" } ?? "-")" }.joined(separator: ", ")
    }
}
