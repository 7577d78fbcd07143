import Cluster
import Foundation
import NN
import SDMAE
import Tiling
import ViT

/// SD-MAE pretraining on every slide's patches.
struct PretrainStage: Stage {
    static let kind = "pretrain"
    static let scope = StageScope.global
    static let summary = "pretrain SD-MAE on patches (tile stage folders, image folders, shards)"
    private static let training = TrainingOptions()
    private static let model = SDMAEConfig.tiny
    static let recipe = Option<PretrainRecipe?>("recipe",
                                                help: "a named set of the options marked 'by recipe' (default: cpu, or adapt with init_encoder); an option given explicitly wins")
    static let initEncoder = Option<String?>("init_encoder", .nameOrPath(EncoderPresets.names), placeholder: "NAME|CONFIG.json",
                                             help: "adapt a published encoder (`wsi encoders`) instead of training a new one: SD-MAE starts from its weights "
                                                 + "and writes the adapted encoder as encoder.safetensors + encoder.json")
    static let weights = Option<String?>("weights", .path, placeholder: "FILE", help: "the weights of init_encoder (safetensors, pytorch_model.bin, .pth)")
    static let encoderLRScale = Option<Double>("encoder_lr_scale", 0...1, default: Adaptation(weights: "").encoderLearningRateScale,
                                               help: "with init_encoder: the learning rate of its last block relative to the new decoder and heads")
    static let layerDecay = Option<Double>("layer_decay", 0.01...1, default: Adaptation(weights: "").layerDecay,
                                           help: "with init_encoder: each block learns this much slower than the one above (BEiT, MAE fine-tuning)")
    static let freezeBlocks = Option<Int>("freeze_blocks", 0...256, default: 0,
                                          help: "with init_encoder: the first N blocks, the patch embedding and the tokens stay as published")
    static let preset = Option<String>("preset", .oneOf(SDMAEConfig.presetNames), default: "tiny", help: "model size")
    static let imageSize = Option<Int?>("image_size", 8...2048, help: "input side in pixels (default: the preset's, "
                                        + "\(SDMAEConfig.tiny.imageSize) for tiny, \(SDMAEConfig.tiny96.imageSize) for tiny96)")
    static let patchSize = Option<Int?>("patch_size", 1...256, help: "side of the square each token covers (default: the preset's, "
                                        + "\(SDMAEConfig.tiny.patchSize) for tiny, \(SDMAEConfig.tiny96.patchSize) for tiny96)")
    static let initialisation = Option<WeightInitialisation>("init", default: .xavier,
                                                             help: "Linear weights of the new model: Xavier-uniform (MAE) or truncated normal σ 0.02 (timm's ViT, DeiT; the patch embedding stays Xavier)")
    static let epochs = Option<Int>("epochs", 1...100_000, default: training.epochs, help: "passes over the patches")
    static let batch = Option<Int>("batch", 1...4096, default: training.batchSize,
                                   help: "batch size; under mpirun/srun the global batch, split evenly over the ranks")
    static let learningRate = Option<Double?>(PretrainRecipe.Key.lr.rawValue, 0...10, help: "base learning rate (applied: lr · batch / 256); " + PretrainRecipe.describe(.lr))
    static let minimumLearningRate = Option<Double>("min_lr", 0...10, default: training.minimumLearningRate, help: "floor of the cosine schedule")
    static let warmupEpochs = Option<Double>("warmup_epochs", 0...10_000, default: training.warmupEpochs, help: "linear warm-up")
    static let distillationWeight = Option<Double?>(PretrainRecipe.Key.p.rawValue, 0...1, help: "weight of the self-distillation loss (0: plain MAE); " + PretrainRecipe.describe(.p))
    static let maskRatio = Option<Double?>(PretrainRecipe.Key.maskRatio.rawValue, 0...0.99, help: "fraction of tokens hidden; " + PretrainRecipe.describe(.maskRatio))
    static let studentTemperature = Option<Double>("tau_s", 1e-4...100, default: model.studentTemperature, help: "student temperature")
    static let teacherTemperature = Option<Double>("tau_t", 1e-4...100, default: model.teacherTemperature, help: "teacher temperature")
    static let teacherWarmupFrom = Option<Double?>("tau_t_warmup_from", 1e-4...100,
                                                   help: "DINO's teacher-temperature warm-up: τt rises linearly from this value to --tau-t (default: no warm-up)")
    static let teacherWarmupEpochs = Option<Double>("tau_t_warmup_epochs", 0...10_000, default: training.teacherTemperatureWarmupEpochs,
                                                    help: "length of the teacher-temperature warm-up")
    static let prototypes = Option<Int?>("prototypes", 1...262_144,
                                         help: "prototypes K of the self-distillation heads (default: the preset's, \(SDMAEConfig.tiny.prototypes) for tiny)")
    static let stopGradient = Option<Bool>("stop_gradient", default: model.teacherStopGradient, help: "detach the teacher (default: L_sd trains it too)")
    static let teacherTargets = Option<TeacherTargets?>(PretrainRecipe.Key.teacherTargets.rawValue,
                                                        help: "teacher distribution: centred softmax (the authors), Sinkhorn-balanced over the batch as a fixed target "
                                                            + "(SwAV, DINOv2), or swapped: each head predicts the other's Sinkhorn codes (SwAV); "
                                                            + PretrainRecipe.describe(.teacherTargets))
    static let meanEntropyWeight = Option<Double?>(PretrainRecipe.Key.meanEntropyWeight.rawValue, 0...10,
                                                   help: "λ of MSN's mean-entropy term: L_sd − λ·H(batch mean) of each head L_sd trains, against every image "
                                                       + "getting one answer; " + PretrainRecipe.describe(.meanEntropyWeight))
    static let centerMode = Option<CenterMode>("center_mode", default: model.centerMode,
                                               help: "what the teacher centre tracks: probabilities (the authors) or logits (DINO)")
    static let targetNorm = Option<TargetNormalisation?>(PretrainRecipe.Key.targetNorm.rawValue,
                                                         help: "reconstruction target: normalised per patch and channel (spec), per patch (MAE), or the pixels as they are; "
                                                             + PretrainRecipe.describe(.targetNorm))
    static let colourJitter = Option<Double>("colour_jitter", 0...1, default: training.colourJitter, help: "colour augmentation strength")
    static let checkpointEvery = Option<Int>("checkpoint_every", 1...10_000_000, default: training.checkpointEvery, help: "steps between checkpoints")
    static let keepCheckpoints = Option<Bool>("keep_checkpoints", default: false, help: "keep every checkpoint, not only the newest (for learning curves)")
    static let seed = Option<Int>("seed", 0...Int(Int32.max), default: Int(training.seed), help: "seed of everything random")
    static let workers = Option<Int>("workers", 1...64, default: training.loaderWorkers, manifest: false, help: "patch decoding threads")
    static let precision = Option<Precision>("precision", default: .fp32,
                                             help: "matrix products: bf16 on CPUs with AVX-512 BF16 is faster (measured in docs/precision.md) and learns the same features; fp32 gives the same model on every CPU")
    static let parameters = [
        recipe.spec, initEncoder.spec, weights.spec, encoderLRScale.spec, layerDecay.spec, freezeBlocks.spec, preset.spec, imageSize.spec, patchSize.spec, initialisation.spec, epochs.spec, batch.spec, learningRate.spec,
        minimumLearningRate.spec, warmupEpochs.spec, distillationWeight.spec, maskRatio.spec, studentTemperature.spec, teacherTemperature.spec,
        teacherWarmupFrom.spec, teacherWarmupEpochs.spec, prototypes.spec, stopGradient.spec, teacherTargets.spec, meanEntropyWeight.spec,
        centerMode.spec, targetNorm.spec, colourJitter.spec, checkpointEvery.spec, keepCheckpoints.spec, seed.spec, workers.spec, precision.spec,
    ]
    static let inputs = [InputSpec("patches", multiple: true, reads: ["tile"], help: "tile stage folders, folders of PNG/JPEG patches, or patch shards")]
    static let outputs = [
        OutputSpec(RunFiles.finalModel, "the trained model: spec names, config in the metadata"),
        OutputSpec(RunFiles.metrics, "a line per step: loss parts, teacher entropy, gradient norm, images/s"),
        OutputSpec(RunFiles.checkpoints + "/", "step-N.safetensors and step-N.optimizer.safetensors"),
        OutputSpec(RunFiles.latest, "the newest complete checkpoint"),
        OutputSpec(RunFiles.adaptedEncoder, "with init_encoder: the adapted encoder under the published file's names (timm loads it strictly)"),
        OutputSpec(RunFiles.adaptedEncoderConfig, "with init_encoder: its config, for --encoder"),
    ]
    static let resumesPartialOutput = true
    static let runsOnEveryRank = true

    let config: SDMAEConfig
    let options: TrainingOptions

    init(_ given: StageParameters) throws {
        // The recipe's values fill what was not given; an explicit option wins.
        let recipe = given[Self.recipe] ?? (given[Self.initEncoder] == nil ? .cpu : .adapt)
        let p = try StageParameters(recipe.values.merging(given.values) { _, explicit in explicit }, specs: Self.parameters)
        config = try Self.modelConfig(p)
        var options = try Self.trainingOptions(p)
        options.adaptation = try Self.adaptation(p, config: config)
        self.options = options
    }

    private static func modelConfig(_ p: StageParameters) throws -> SDMAEConfig {
        var config = try architecture(p)
        config.imageSize = p[imageSize] ?? config.imageSize
        config.patchSize = p[patchSize] ?? config.patchSize
        config.distillationWeight = p[distillationWeight] ?? config.distillationWeight
        config.prototypes = p[prototypes] ?? config.prototypes
        config.maskRatio = p[maskRatio] ?? config.maskRatio
        config.studentTemperature = p[studentTemperature]
        config.teacherTemperature = p[teacherTemperature]
        config.teacherStopGradient = p[stopGradient]
        config.centerMode = p[centerMode]
        config.teacherTargets = p[teacherTargets] ?? config.teacherTargets
        config.meanEntropyWeight = p[meanEntropyWeight] ?? config.meanEntropyWeight
        config.targetNormalisation = p[targetNorm] ?? config.targetNormalisation
        if let problem = config.validationError() { throw StageError.invalid(problem) }
        return config
    }

    /// A preset's new network, or the one around the published encoder to adapt.
    private static func architecture(_ p: StageParameters) throws -> SDMAEConfig {
        guard let name = p[initEncoder] else {
            guard p[weights] == nil else { throw StageError.invalid("weights needs init_encoder: the published encoder they belong to") }
            guard let config = SDMAEConfig.preset(named: p[preset]) else { throw StageError.invalid("unknown preset '\(p[preset])'") }
            return config
        }
        guard p[imageSize] == nil, p[patchSize] == nil else {
            throw StageError.invalid("image_size and patch_size come from init_encoder \(name); leave them out")
        }
        let encoder: EncoderPreset
        do { encoder = try EncoderPresets.resolve(name) } catch { throw StageError.invalid(String(describing: error)) }
        guard p[freezeBlocks] <= encoder.config.depth else {
            throw StageError.invalid("freeze_blocks \(p[freezeBlocks]) is more than \(encoder.name)'s \(encoder.config.depth) blocks")
        }
        return SDMAEConfig.adapting(EncoderStart(name: encoder.name, config: encoder.config))
    }

    private static func adaptation(_ p: StageParameters, config: SDMAEConfig) throws -> Adaptation? {
        guard let start = config.encoderStart else { return nil }
        guard let path = p[weights] else { throw StageError.invalid("init_encoder \(start.name) needs its weights: give weights FILE") }
        var adaptation = Adaptation(weights: path)
        adaptation.encoderLearningRateScale = p[encoderLRScale]
        adaptation.layerDecay = p[layerDecay]
        adaptation.frozenBlocks = p[freezeBlocks]
        return adaptation
    }

    private static func trainingOptions(_ p: StageParameters) throws -> TrainingOptions {
        var options = TrainingOptions()
        options.epochs = p[epochs]
        options.batchSize = p[batch]
        options.baseLearningRate = p[learningRate] ?? options.baseLearningRate
        options.minimumLearningRate = p[minimumLearningRate]
        options.warmupEpochs = p[warmupEpochs]
        options.colourJitter = p[colourJitter]
        options.teacherTemperatureWarmupStart = p[teacherWarmupFrom]
        options.teacherTemperatureWarmupEpochs = p[teacherWarmupEpochs]
        // Either half of the warm-up alone would silently do nothing.
        if options.teacherTemperatureWarmupStart != nil, options.teacherTemperatureWarmupEpochs == 0 {
            throw StageError.invalid("tau_t_warmup_from needs tau_t_warmup_epochs above 0 (the length of the warm-up)")
        }
        if options.teacherTemperatureWarmupStart == nil, options.teacherTemperatureWarmupEpochs > 0 {
            throw StageError.invalid("tau_t_warmup_epochs needs tau_t_warmup_from (the teacher temperature the warm-up starts at)")
        }
        options.checkpointEvery = p[checkpointEvery]
        options.keepsCheckpoints = p[keepCheckpoints]
        options.seed = UInt64(p[seed])
        options.loaderWorkers = p[workers]
        // fp32 stays unrecorded (nil), as in runs made before the option existed.
        if p[precision] == .bf16 { options.precision = PrecisionChoice.bf16.resolved }
        // Xavier stays unrecorded (nil), as in runs made before the option existed.
        if p[initialisation] != .xavier { options.initialisation = p[initialisation] }
        return options
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
    /// Continued pretraining of a published encoder: MAE's 75 % mask, the authors' targets, and the
    /// teacher that stayed informative on a CPU budget in the recipe search (mean-entropy term,
    /// L_sd weighted down to p 0.02); the encoder's own rate is scaled down by encoder_lr_scale.
    case adapt

    /// The options a recipe sets.
    enum Key: String {
        case lr, p, maskRatio = "mask_ratio", teacherTargets = "teacher_targets", targetNorm = "target_norm"
        case meanEntropyWeight = "mean_entropy_weight"
    }

    var values: [String: ParameterValue] {
        switch self {
        case .cpu:
            return values(lr: 1.2e-2, p: 0, maskRatio: 0.6, targets: .centred, targetNorm: .none, meanEntropy: 0)
        case .authors:
            return values(lr: 1.5e-4, p: 0.2, maskRatio: 0.6, targets: .centred, targetNorm: .perPatchChannel, meanEntropy: 0)
        case .adapt:
            return values(lr: 1.5e-3, p: 0.02, maskRatio: 0.75, targets: .centred, targetNorm: .perPatchChannel, meanEntropy: 1)
        }
    }

    private func values(lr: Double, p: Double, maskRatio: Double, targets: TeacherTargets, targetNorm: TargetNormalisation,
                        meanEntropy: Double) -> [String: ParameterValue] {
        [Key.lr.rawValue: .double(lr), Key.p.rawValue: .double(p), Key.maskRatio.rawValue: .double(maskRatio),
         Key.teacherTargets.rawValue: .string(targets.rawValue), Key.targetNorm.rawValue: .string(targetNorm.rawValue),
         Key.meanEntropyWeight.rawValue: .double(meanEntropy)]
    }

    /// "by recipe: cpu 0.2, authors 0.2", for the help of a recipe-set option.
    static func describe(_ key: Key) -> String {
        "by recipe: " + allCases.map { "\($0.rawValue) \($0.values[key.rawValue].map { "\($0)" } ?? "-")" }.joined(separator: ", ")
    }
}
