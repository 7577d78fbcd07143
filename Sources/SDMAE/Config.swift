import ViT
/// How the reconstruction target is normalised (spec: per patch and channel by default).
public enum TargetNormalisation: String, Codable, Sendable, CaseIterable {
    /// (x − mean) / (unbiased std + 1e-6) over the P·P pixels of each channel of each patch.
    case perPatchChannel = "patch-channel"
    /// MAE's (x − mean) / sqrt(var + 1e-6) over all P·P·3 values of a patch.
    case perPatch = "patch"
    /// The pixels as they are, in [0, 1]: colour and brightness stay in the target.
    case none
}

/// How the teacher's distribution P is made from its logits.
public enum TeacherTargets: String, Codable, Sendable, CaseIterable {
    /// softmax((z_t − c)/τt) with the running centre c (the authors; trains the teacher through P).
    case centred
    /// Sinkhorn-Knopp over the batch (SwAV, DINOv2): every prototype gets an equal share of the
    /// batch, so the teacher cannot give every image the same answer; P is a fixed target.
    case sinkhorn
    /// SwAV's swapped prediction between the heads: each head's softmax(z/τs) predicts the
    /// other head's Sinkhorn codes (τt), codes held fixed; both heads learn, and balanced codes
    /// leave no single answer for every image.
    case swapped
}

/// How a new model's Linear weights are drawn (patch embedding, biases, norms, mask token and heads
/// are the same either way).
public enum WeightInitialisation: String, Codable, Sendable, CaseIterable {
    /// Xavier-uniform, as MAE: the spread follows each layer's fan-in and fan-out.
    case xavier
    /// Truncated normal, σ 0.02, as timm's ViT and DeiT: the same small spread for every layer.
    case truncatedNormal = "trunc-normal"
}

/// What the teacher centre tracks.
public enum CenterMode: String, Codable, Sendable, CaseIterable {
    /// c ← m·c + (1−m)·mean_b(P), the authors' code.
    case probabilities
    /// c ← m·c + (1−m)·mean_b(z_t), as in DINO.
    case logits
}

/// Architecture and loss options of SD-MAE (see the project's spec); every option is a switch.
public struct SDMAEConfig: Codable, Equatable, Sendable {
    public var imageSize: Int
    public var patchSize: Int
    public var width: Int
    public var depth: Int
    public var heads: Int
    public var decoderWidth: Int
    public var decoderDepth: Int
    public var decoderHeads: Int
    public var headHidden: Int
    public var bottleneck: Int
    public var prototypes: Int

    public var maskRatio = 0.6
    /// Weight p of the self-distillation loss: L = (1−p)·L_rec + p·L_sd; 0 is plain MAE.
    public var distillationWeight = 0.2
    public var studentTemperature = 0.1
    public var teacherTemperature = 0.04
    public var centerMomentum = 0.9
    public var teacherStopGradient = false
    public var centerMode = CenterMode.probabilities
    public var targetNormalisation = TargetNormalisation.perPatchChannel
    public var teacherTargets = TeacherTargets.centred
    /// λ of MSN's mean-entropy maximisation: L_sd gains −λ·H(batch mean) of the student's
    /// distribution and of the teacher's where L_sd trains it, so an answer shared by every image
    /// costs more than a spread of prototypes.
    public var meanEntropyWeight = 0.0
    /// The published encoder this run adapts; nil: a new encoder.
    public var encoderStart: EncoderStart?

    public init(imageSize: Int, patchSize: Int, width: Int, depth: Int, heads: Int, decoderWidth: Int, decoderDepth: Int,
                decoderHeads: Int, headHidden: Int, bottleneck: Int, prototypes: Int) {
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.width = width
        self.depth = depth
        self.heads = heads
        self.decoderWidth = decoderWidth
        self.decoderDepth = decoderDepth
        self.decoderHeads = decoderHeads
        self.headHidden = headHidden
        self.bottleneck = bottleneck
        self.prototypes = prototypes
    }

    public var grid: Int { imageSize / patchSize }
    public var tokens: Int { grid * grid }
    public var patchValues: Int { patchSize * patchSize * 3 }
    /// Exactly int(ratio·L) tokens are masked per image.
    public var maskedTokens: Int { Int(maskRatio * Double(tokens)) }
    public var visibleTokens: Int { tokens - maskedTokens }

    public static let tiny = SDMAEConfig(imageSize: 224, patchSize: 16, width: 192, depth: 12, heads: 3, decoderWidth: 128,
                                         decoderDepth: 4, decoderHeads: 4, headHidden: 512, bottleneck: 128, prototypes: 1024)
    public static let tiny96 = SDMAEConfig(imageSize: 96, patchSize: 8, width: 192, depth: 6, heads: 3, decoderWidth: 128,
                                           decoderDepth: 2, decoderHeads: 4, headHidden: 512, bottleneck: 128, prototypes: 1024)
    public static let small = SDMAEConfig(imageSize: 224, patchSize: 16, width: 384, depth: 12, heads: 6, decoderWidth: 192,
                                          decoderDepth: 4, decoderHeads: 3, headHidden: 2048, bottleneck: 256, prototypes: 4096)

    public static let presetNames = ["tiny", "tiny96", "small"]

    public static func preset(named name: String) -> SDMAEConfig? {
        ["tiny": tiny, "tiny96": tiny96, "small": small][name]
    }

    /// Checks the shape constraints the layers rely on; returns a message naming the first violation.
    public func validationError() -> String? {
        // Sizes come from files too (a checkpoint's metadata): bound them before anything is
        // allocated from them. The limits are far beyond any ViT that trains on a CPU.
        let bounds: [(String, Int, ClosedRange<Int>)] = [
            ("image size", imageSize, 8...2048), ("patch size", patchSize, 1...256), ("width", width, 4...8192),
            ("depth", depth, 1...96), ("heads", heads, 1...128), ("decoder width", decoderWidth, 4...8192),
            ("decoder depth", decoderDepth, 1...96), ("decoder heads", decoderHeads, 1...128),
            ("head hidden width", headHidden, 1...65536), ("bottleneck", bottleneck, 1...65536), ("prototypes", prototypes, 1...262_144),
        ]
        for (name, value, range) in bounds where !range.contains(value) {
            return "\(name) \(value) is outside \(range.lowerBound)...\(range.upperBound)"
        }
        if tokens > 65_536 { return "\(tokens) tokens per image is more than 65536" }
        for (name, value) in [("student temperature", studentTemperature), ("teacher temperature", teacherTemperature)]
            where !(value.isFinite && value > 0) {
            return "\(name) must be a positive number"
        }
        if !(centerMomentum.isFinite && (0...1).contains(centerMomentum)) { return "centre momentum must be in 0...1" }
        if imageSize % patchSize != 0 { return "image size \(imageSize) is not a multiple of patch size \(patchSize)" }
        if width % heads != 0 { return "encoder width \(width) is not divisible by \(heads) heads" }
        if decoderWidth % decoderHeads != 0 { return "decoder width \(decoderWidth) is not divisible by \(decoderHeads) heads" }
        if (encoderStart == nil && width % 4 != 0) || decoderWidth % 4 != 0 { return "widths must be multiples of 4 for the sin-cos position table" }
        if !maskRatio.isFinite || !(0..<1).contains(maskRatio) || visibleTokens < 1 { return "mask ratio \(maskRatio) leaves no visible token" }
        if !(0...1).contains(distillationWeight) { return "p must be in 0...1" }
        if !(meanEntropyWeight.isFinite && meanEntropyWeight >= 0) { return "the mean-entropy weight must be a number ≥ 0" }
        return encoderStart.flatMap(encoderStartError)
    }

    /// A published encoder's config must be a buildable ViT and be the encoder this config
    /// describes: a checkpoint's metadata names it, and the network is allocated from it.
    private func encoderStartError(_ start: EncoderStart) -> String? {
        do { try start.config.validate(source: "encoder_start") } catch { return "\(error)" }
        let vit = start.config
        guard vit.width == width, vit.depth == depth, vit.heads == heads, vit.patchSize == patchSize,
              vit.transform.outputSize == imageSize else {
            return "the published encoder's config (\(vit.width) wide, \(vit.depth) blocks, \(vit.heads) heads, patch \(vit.patchSize), "
                + "\(vit.transform.outputSize) px) is not this model's encoder (\(width), \(depth), \(heads), \(patchSize), \(imageSize) px)"
        }
        guard (1...(64 * width)).contains(start.hiddenWidth) else { return "the published encoder's MLP width \(start.hiddenWidth) is outside 1...\(64 * width)" }
        return nil
    }
}

extension SDMAEConfig {
    /// The architecture is required; training-only keys (mask ratio, temperatures, centre and
    /// target modes) take their defaults when absent, so a checkpoint made elsewhere that states
    /// its architecture loads for embedding and evaluation.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(imageSize: try c.decode(Int.self, forKey: .imageSize), patchSize: try c.decode(Int.self, forKey: .patchSize),
                  width: try c.decode(Int.self, forKey: .width), depth: try c.decode(Int.self, forKey: .depth),
                  heads: try c.decode(Int.self, forKey: .heads), decoderWidth: try c.decode(Int.self, forKey: .decoderWidth),
                  decoderDepth: try c.decode(Int.self, forKey: .decoderDepth), decoderHeads: try c.decode(Int.self, forKey: .decoderHeads),
                  headHidden: try c.decode(Int.self, forKey: .headHidden), bottleneck: try c.decode(Int.self, forKey: .bottleneck),
                  prototypes: try c.decode(Int.self, forKey: .prototypes))
        maskRatio = try c.decodeIfPresent(Double.self, forKey: .maskRatio) ?? maskRatio
        distillationWeight = try c.decodeIfPresent(Double.self, forKey: .distillationWeight) ?? distillationWeight
        studentTemperature = try c.decodeIfPresent(Double.self, forKey: .studentTemperature) ?? studentTemperature
        teacherTemperature = try c.decodeIfPresent(Double.self, forKey: .teacherTemperature) ?? teacherTemperature
        centerMomentum = try c.decodeIfPresent(Double.self, forKey: .centerMomentum) ?? centerMomentum
        teacherStopGradient = try c.decodeIfPresent(Bool.self, forKey: .teacherStopGradient) ?? teacherStopGradient
        centerMode = try c.decodeIfPresent(CenterMode.self, forKey: .centerMode) ?? centerMode
        targetNormalisation = try c.decodeIfPresent(TargetNormalisation.self, forKey: .targetNormalisation) ?? targetNormalisation
        teacherTargets = try c.decodeIfPresent(TeacherTargets.self, forKey: .teacherTargets) ?? teacherTargets
        meanEntropyWeight = try c.decodeIfPresent(Double.self, forKey: .meanEntropyWeight) ?? meanEntropyWeight
        encoderStart = try c.decodeIfPresent(EncoderStart.self, forKey: .encoderStart)
    }
}

/// The published encoder an adaptation run starts from: its architecture, and fc1's width as
/// its weights have it.
public struct EncoderStart: Codable, Equatable, Sendable {
    public var name: String
    public var config: ViTConfig
    public var hiddenWidth: Int

    /// fc1's width is the config's unless given; loading the weights corrects it.
    public init(name: String, config: ViTConfig, hiddenWidth: Int? = nil) {
        self.name = name
        self.config = config
        self.hiddenWidth = hiddenWidth ?? config.hiddenWidth
    }
}

extension SDMAEConfig {
    /// SD-MAE around a published encoder: its input side, patch, width, depth and heads; a new
    /// decoder of half its width (MAE's ratio at ViT-L) and four blocks, 64-wide heads; the
    /// self-distillation heads of `small` with `tiny`'s 1024 prototypes (what the measured
    /// adaptation runs used, docs/pretraining.md).
    public static func adapting(_ start: EncoderStart) -> SDMAEConfig {
        let vit = start.config, half = vit.width / 2
        let decoderWidth = half >= 64 ? half - half % 64 : max(4, half - half % 4)
        var config = SDMAEConfig(imageSize: vit.transform.outputSize, patchSize: vit.patchSize, width: vit.width, depth: vit.depth,
                                 heads: vit.heads, decoderWidth: decoderWidth, decoderDepth: 4, decoderHeads: max(1, decoderWidth / 64),
                                 headHidden: small.headHidden, bottleneck: small.bottleneck, prototypes: tiny.prototypes)
        config.encoderStart = start
        return config
    }
}
