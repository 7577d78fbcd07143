import Foundation
import NN
import ViT

/// Losses and statistics of one training step.
public struct StepLosses: Equatable, Sendable {
    public var reconstruction: Double
    public var distillation: Double
    public var total: Double
    /// Mean entropy of each image's teacher distribution P: near 0 every image is one-hot on a
    /// prototype, near ln K the teacher is uniform and L_sd says nothing.
    public var teacherEntropy: Double
    /// Entropy of the batch-mean P (how many prototypes the batch uses, as e^H): near 0 every
    /// image lands on the same prototype.
    public var prototypeEntropy: Double
}

/// Which tokens each image shows to the encoder and which the decoder must reconstruct.
public struct TokenMask: Equatable, Sendable {
    public var visible: [[Int]]
    public var masked: [[Int]]

    public init(visible: [[Int]], masked: [[Int]]) {
        self.visible = visible
        self.masked = masked
    }

    /// MAE's masking: argsort of uniform noise, the first `visibleCount` kept (then sorted, as the
    /// order inside a set is irrelevant to attention and sorted indices read better).
    /// The masks of images `range` of the batch.
    public func images(_ range: Range<Int>) -> TokenMask {
        TokenMask(visible: Array(visible[range]), masked: Array(masked[range]))
    }

    public static func random(batch: Int, tokens: Int, masked: Int, using generator: inout SeededGenerator) -> TokenMask {
        var visible: [[Int]] = [], hidden: [[Int]] = []
        for _ in 0..<batch {
            let noise = (0..<tokens).map { _ in generator.uniform() }
            let order = (0..<tokens).sorted { noise[$0] < noise[$1] }
            visible.append(order[..<(tokens - masked)].sorted())
            hidden.append(order[(tokens - masked)...].sorted())
        }
        return TokenMask(visible: visible, masked: hidden)
    }
}

/// SD-MAE: ViT encoder on visible tokens, MAE decoder over all positions, pixel reconstruction
/// of masked tokens, and self-distillation from the decoder (teacher) to the encoder (student)
/// on visible tokens. Parameter names follow timm / the authors' code.
public final class SDMAEModel {
    public let config: SDMAEConfig

    /// New (`ScratchEncoder`) or a published ViT being adapted (`config.encoderStart`).
    public let encoder: any MaskedEncoder
    let decoderEmbed: Linear
    public let maskToken: Parameter
    let decoderPositions: [Float]
    let decoderBlocks: [TransformerBlock]
    let decoderNorm: LayerNorm
    let decoderPred: Linear
    let studentHead: DINOHead
    let teacherHead: DINOHead
    /// Teacher centre [K]; a buffer, not trained.
    public var center: [Float]
    /// τt of this step: the config's, unless a trainer warms it up (DINO's schedule).
    public var teacherTemperature: Float

    /// Arithmetic of the model's matrix products. In bf16 the linear layers (encoder, decoder and
    /// the heads' MLPs; not the weight-normalised prototype layer) and attention run bfloat16
    /// products forward and backward; every norm, activation, softmax, loss and reduction stays
    /// fp32. Set it again after loading other weights; a trainer calls `refreshLowPrecisionWeights`
    /// after each optimiser step.
    public var precision = Precision.fp32 {
        didSet {
            for layer in lowPrecisionLayers { layer.precision = precision }
            for attention in encoder.attentions + decoderBlocks.map(\.attention) { attention.precision = precision }
        }
    }

    private var lowPrecisionLayers: [Linear] {
        encoder.linears + [decoderEmbed, decoderPred] + decoderBlocks.flatMap(\.linears)
            + [studentHead, teacherHead].flatMap { [$0.fc0, $0.fc2, $0.fc4] }
    }

    public func refreshLowPrecisionWeights() {
        guard precision == .bf16 else { return }
        for layer in lowPrecisionLayers { layer.refreshLowPrecisionWeights() }
    }

    // Activations, kept between forward and backward.
    private let patches = Buffer(count: 0)
    private let decoderInput = Buffer(count: 0)
    private let maskedDecoded = Buffer(count: 0)
    private let visibleDecoded = Buffer(count: 0)
    public let target = Buffer(count: 0)
    private let predictionGradient = Buffer(count: 0)
    private let decodedGradient = Buffer(count: 0)
    private let studentLogitGradient = Buffer(count: 0)
    private let teacherLogitGradient = Buffer(count: 0)
    private let latentGradient = Buffer(count: 0)
    private let studentPooled = Buffer(count: 0)
    private let teacherPooled = Buffer(count: 0)
    private let teacherProbabilities = Buffer(count: 0)
    private let studentLogProbabilities = Buffer(count: 0)
    /// Swapped prediction only: the student's Sinkhorn codes and the teacher's log-predictions.
    private let studentCodes = Buffer(count: 0)
    private let teacherLogProbabilities = Buffer(count: 0)
    private var mask = TokenMask(visible: [], masked: [])
    private var batch = 0
    private var encoded: UnsafePointer<Float>?

    /// `published`: the loaded ViT of `config.encoderStart` (else its weights stay zero for a
    /// checkpoint to fill).
    public init(config: SDMAEConfig, seed: UInt64 = 0, initialisation: WeightInitialisation = .xavier, published: VisionTransformer? = nil) {
        self.config = config
        teacherTemperature = Float(config.teacherTemperature)
        let d = config.width, dd = config.decoderWidth
        if let start = config.encoderStart {
            encoder = PublishedEncoder(published ?? VisionTransformer(config: start.config, hiddenWidth: start.hiddenWidth, seed: nil, trains: true))
        } else {
            encoder = ScratchEncoder(config: config)
        }
        decoderEmbed = Linear("decoder_embed", inputs: d, outputs: dd)
        maskToken = Parameter("mask_token", shape: [1, 1, dd], decay: false)
        decoderPositions = sinCosPositionTable(width: dd, grid: config.grid)
        decoderBlocks = (0..<config.decoderDepth).map { TransformerBlock("decoder_blocks.\($0)", width: dd, heads: config.decoderHeads) }
        decoderNorm = LayerNorm("decoder_norm", width: dd)
        decoderPred = Linear("decoder_pred", inputs: dd, outputs: config.patchValues)
        studentHead = DINOHead("student_head", inputs: d, hidden: config.headHidden, bottleneck: config.bottleneck, prototypes: config.prototypes)
        teacherHead = DINOHead("teacher_head", inputs: dd, hidden: config.headHidden, bottleneck: config.bottleneck, prototypes: config.prototypes)
        center = [Float](repeating: 0, count: config.prototypes)
        initialise(seed: seed, scheme: initialisation)
    }

    /// Every trainable parameter, in a fixed order (the optimiser's moments follow it).
    public var parameters: [Parameter] {
        encoder.parameters + decoderParameters
    }

    /// Everything but the encoder: what is new when a published encoder is adapted.
    var decoderParameters: [Parameter] {
        decoderEmbed.parameters + [maskToken]
            + decoderBlocks.flatMap(\.parameters) + decoderNorm.parameters + decoderPred.parameters
            + studentHead.parameters + teacherHead.parameters
    }

    /// MAE's initialisation: Xavier-uniform Linear weights and patch embedding, zero biases, unit
    /// norms, mask token N(0, 0.02); DINO heads truncated-normal 0.02. `.truncatedNormal` draws the
    /// Linear weights as the heads' instead, keeping the patch embedding Xavier (timm's ViT).
    private func initialise(seed: UInt64, scheme: WeightInitialisation) {
        var generator = SeededGenerator(seed: seed)
        for parameter in config.encoderStart == nil ? parameters : decoderParameters {
            if parameter.name == "mask_token" {
                parameter.initialiseNormal(std: 0.02, using: &generator)
            } else if parameter.name.hasSuffix("_head.last_layer.weight_v") {
                let bound = 1 / Float(parameter.shape[1]).squareRoot()
                for i in 0..<parameter.count { parameter.value[i] = (generator.uniform() * 2 - 1) * bound }
            } else if parameter.name.contains("_head.") && parameter.decay {
                parameter.initialiseTruncatedNormal(std: 0.02, using: &generator)
            } else if parameter.decay, scheme == .truncatedNormal, !parameter.name.hasPrefix("patch_embed.") {
                parameter.initialiseTruncatedNormal(std: 0.02, using: &generator)
            } else if parameter.decay {
                parameter.initialiseXavierUniform(using: &generator)
            }
        }
    }

    // MARK: Training step, as MAE's forward: encode, decode, then each loss

    /// Forward pass and losses for `images` ([B,3,S,S] in [0,1]) under `mask`.
    @discardableResult
    public func forward(images: UnsafePointer<Float>, batch: Int, mask: TokenMask) throws -> StepLosses {
        precondition(mask.visible.count == batch && mask.masked.count == batch)
        self.mask = mask
        self.batch = batch
        let latent = try encode(images, batch: batch, tokens: mask.visible)         // [B·nv, d]
        let decoded = try decode(latent)                                             // [B·L, dd]
        splitDecoded(decoded)                                                    // visible [B·nv, dd], masked [B·nm, dd]
        let prediction = try decoderPred.forward(maskedDecoded.pointer, rows: batch * mask.masked[0].count)  // [B·nm, P·P·3]
        let reconstruction = reconstructionLoss(images, prediction: prediction)
        let (distillation, entropy, usage) = try distillationLoss(latent)
        let p = config.distillationWeight
        return StepLosses(reconstruction: reconstruction, distillation: distillation,
                          total: (1 - p) * reconstruction + p * distillation, teacherEntropy: entropy, prototypeEntropy: usage)
    }

    /// The encoder on the listed tokens of each image (every image lists as many):
    /// patch embedding plus positions, the blocks, the final norm → [B·n, d].
    func encode(_ images: UnsafePointer<Float>, batch: Int, tokens: [[Int]], keepsForBackward: Bool = true) throws -> UnsafePointer<Float> {
        let n = tokens[0].count
        patches.reserve(batch * n * config.patchValues)
        Patches.channelFirst(images, config: config, batch: batch, tokens: tokens, into: patches.pointer)   // [B·n, 3·p·p]
        let latent = try encoder.encode(patches.pointer, batch: batch, tokens: tokens, keepsForBackward: keepsForBackward)  // [B·n, d]
        encoded = latent
        return latent
    }

    /// The decoder over all positions of the current mask: visible tokens first, then mask tokens
    /// → [B·L, dd].
    func decode(_ latent: UnsafePointer<Float>) throws -> UnsafePointer<Float> {
        let nv = mask.visible[0].count, L = config.tokens, dd = config.decoderWidth
        let decodedVisible = try decoderEmbed.forward(latent, rows: batch * nv)    // [B·nv, dd]
        decoderInput.reserve(batch * L * dd)
        for b in 0..<batch {
            for (i, token) in mask.visible[b].enumerated() {
                let row = (b * L + i) * dd, source = (b * nv + i) * dd
                for j in 0..<dd { decoderInput[row + j] = decodedVisible[source + j] + decoderPositions[token * dd + j] }
            }
            for (i, token) in mask.masked[b].enumerated() {
                let row = (b * L + nv + i) * dd
                for j in 0..<dd { decoderInput[row + j] = maskToken.value[j] + decoderPositions[token * dd + j] }
            }
        }
        var y = UnsafePointer(decoderInput.pointer)                             // [B·L, dd]
        for block in decoderBlocks { y = try UnsafePointer(block.forward(y, batch: batch, tokens: L)) }
        return UnsafePointer(decoderNorm.forward(y, rows: batch * L))           // [B·L, dd]
    }

    /// Copies each image's visible and masked decoder rows into their own buffers.
    private func splitDecoded(_ decoded: UnsafePointer<Float>) {
        let nv = mask.visible[0].count, nm = mask.masked[0].count, L = config.tokens, dd = config.decoderWidth
        maskedDecoded.reserve(batch * nm * dd)
        visibleDecoded.reserve(batch * nv * dd)
        for b in 0..<batch {
            (visibleDecoded.pointer + b * nv * dd).update(from: decoded + b * L * dd, count: nv * dd)
            (maskedDecoded.pointer + b * nm * dd).update(from: decoded + (b * L + nv) * dd, count: nm * dd)
        }
    }

    /// Mean squared error between the prediction of masked tokens and their normalised pixels.
    private func reconstructionLoss(_ images: UnsafePointer<Float>, prediction: UnsafePointer<Float>) -> Double {
        let values = batch * mask.masked[0].count * config.patchValues
        target.reserve(values)
        Patches.targets(images, config: config, batch: batch, tokens: mask.masked, into: target.pointer)
        var squared = 0.0
        for i in 0..<values { let e = Double(prediction[i] - target[i]); squared += e * e }
        return squared / Double(values)
    }

    /// Self-distillation from the teacher (decoder, visible tokens) to the student (encoder),
    /// each head's logits pooled over an image's tokens: the teacher's targets by mode, the
    /// student's log-probabilities, the loss, MSN's mean-entropy term; also the teacher's
    /// entropies per image and of the batch mean.
    private func distillationLoss(_ latent: UnsafePointer<Float>) throws -> (loss: Double, teacherEntropy: Double, prototypeEntropy: Double) {
        let k = config.prototypes
        try poolHeadLogits(latent)                                                          // studentPooled, teacherPooled: [B, K]
        teacherProbabilities.reserve(batch * k)
        switch config.teacherTargets {
        case .centred: centredTeacherTargets()
        case .sinkhorn: sinkhornTargets(teacherPooled.pointer, temperature: teacherTemperature, into: teacherProbabilities.pointer)
        case .swapped: swappedCodes()
        }
        studentLogSoftmax()                                                                  // studentLogProbabilities: [B, K]
        var distillation = config.teacherTargets == .swapped ? swappedLoss() : crossEntropyToTeacher()
        distillation -= meanEntropyTerm()
        let usage = Self.entropyOfBatchMean(batch: batch, k: k) { Double(teacherProbabilities[$0]) }
        return (distillation / Double(batch), teacherEntropySum() / Double(batch), usage)
    }

    private func poolHeadLogits(_ latent: UnsafePointer<Float>) throws {
        let nv = mask.visible[0].count, k = config.prototypes
        let studentLogits = try studentHead.forward(latent, groups: batch, rowsPerGroup: nv)                      // [B, K]
        let teacherLogits = try teacherHead.forward(visibleDecoded.pointer, groups: batch, rowsPerGroup: nv)      // [B, K]
        studentPooled.reserve(batch * k)
        teacherPooled.reserve(batch * k)
        studentPooled.pointer.update(from: studentLogits, count: batch * k)
        teacherPooled.pointer.update(from: teacherLogits, count: batch * k)
    }

    /// The authors' teacher: softmax((z_t − c)/τt) with the running centre c.
    private func centredTeacherTargets() {
        let k = config.prototypes
        for b in 0..<batch {
            let pt = teacherProbabilities.pointer + b * k
            for j in 0..<k { pt[j] = (teacherPooled[b * k + j] - center[j]) / teacherTemperature }
            softmaxInPlace(pt, count: k)
        }
    }

    /// SwAV's swapped prediction: Sinkhorn codes of both heads, each predicted by the other.
    private func swappedCodes() {
        let k = config.prototypes
        sinkhornTargets(teacherPooled.pointer, temperature: teacherTemperature, into: teacherProbabilities.pointer)
        studentCodes.reserve(batch * k)
        teacherLogProbabilities.reserve(batch * k)
        sinkhornTargets(studentPooled.pointer, temperature: teacherTemperature, into: studentCodes.pointer)
    }

    private func studentLogSoftmax() {
        let k = config.prototypes, tauS = Float(config.studentTemperature)
        studentLogProbabilities.reserve(batch * k)
        for b in 0..<batch {
            let lq = studentLogProbabilities.pointer + b * k
            for j in 0..<k { lq[j] = studentPooled[b * k + j] / tauS }
            logSoftmaxInPlace(lq, count: k)
        }
    }

    /// Σ over the batch of −Σ_j P_j log q_j.
    private func crossEntropyToTeacher() -> Double {
        var loss = 0.0
        for i in 0..<(batch * config.prototypes) { loss -= Double(teacherProbabilities[i]) * Double(studentLogProbabilities[i]) }
        return loss
    }

    /// The swapped-prediction loss summed over the batch, as the cross-entropy is.
    private func swappedLoss() -> Double {
        Self.swappedPredictionLoss(studentLogProbabilities: studentLogProbabilities.pointer, teacherLogits: teacherPooled.pointer,
                                   teacherCodes: teacherProbabilities.pointer, studentCodes: studentCodes.pointer,
                                   teacherLogProbabilities: teacherLogProbabilities.pointer, batch: batch, k: config.prototypes,
                                   tauS: Float(config.studentTemperature)) * Double(batch)
    }

    /// λ·B·(H(q̄) + H(p̄) of the teacher L_sd trains): what the loss subtracts.
    private func meanEntropyTerm() -> Double {
        guard config.meanEntropyWeight > 0 else { return 0 }
        let k = config.prototypes
        var spread = Self.meanEntropy(logProbabilities: studentLogProbabilities.pointer, batch: batch, k: k)
        if trainedTeacherTemperature != nil {
            if config.teacherTargets == .centred {
                teacherLogProbabilities.reserve(batch * k)
                for i in 0..<(batch * k) { teacherLogProbabilities[i] = logf(max(teacherProbabilities[i], .leastNormalMagnitude)) }
            }
            spread += Self.meanEntropy(logProbabilities: teacherLogProbabilities.pointer, batch: batch, k: k)
        }
        return config.meanEntropyWeight * Double(batch) * spread
    }

    /// Σ over the batch of the teacher distribution's entropy.
    private func teacherEntropySum() -> Double {
        var entropy = 0.0
        for i in 0..<(batch * config.prototypes) where teacherProbabilities[i] > 0 {
            entropy -= Double(teacherProbabilities[i]) * log(Double(teacherProbabilities[i]))
        }
        return entropy
    }

    /// The temperature of the teacher distribution L_sd trains — the centred P unless detached,
    /// or in swapped prediction the teacher's own prediction — whose log-probabilities
    /// `teacherLogProbabilities` holds for the mean-entropy term; nil for fixed targets.
    private var trainedTeacherTemperature: Float? {
        switch config.teacherTargets {
        case .centred where !config.teacherStopGradient: return teacherTemperature
        case .swapped: return Float(config.studentTemperature)
        case .centred, .sinkhorn: return nil
        }
    }

    /// H(mean over the batch of exp(log-probabilities)), the entropy MSN maximises.
    static func meanEntropy(logProbabilities lq: UnsafePointer<Float>, batch: Int, k: Int) -> Double {
        entropyOfBatchMean(batch: batch, k: k) { Double(expf(lq[$0])) }
    }

    /// H(mean over the batch's rows) of [batch, k] probabilities given by flat index.
    private static func entropyOfBatchMean(batch: Int, k: Int, _ probability: (Int) -> Double) -> Double {
        var entropy = 0.0
        for j in 0..<k {
            var mean = 0.0
            for b in 0..<batch { mean += probability(b * k + j) }
            mean /= Double(batch)
            if mean > 0 { entropy -= mean * log(mean) }
        }
        return entropy
    }

    /// Adds d(−weight · H(q̄))/dz for q = softmax(z/τ), q̄ its batch mean:
    /// −weight/τ · q ⊙ (g − Σ q g) with g = −(log q̄ + 1)/B (the constant cancels).
    static func addMeanEntropyGradients(logProbabilities lq: UnsafePointer<Float>, weight: Float, batch: Int, k: Int, tau: Float,
                                        into gradient: UnsafeMutablePointer<Float>) {
        var logMean = [Float](repeating: 0, count: k)
        for j in 0..<k {
            var mean: Float = 0
            for b in 0..<batch { mean += expf(lq[b * k + j]) }
            logMean[j] = logf(max(mean / Float(batch), .leastNormalMagnitude))
        }
        for b in 0..<batch {
            let row = b * k
            var expectation: Float = 0
            for j in 0..<k { expectation += expf(lq[row + j]) * logMean[j] }
            for j in 0..<k { gradient[row + j] += weight / (tau * Float(batch)) * expf(lq[row + j]) * (logMean[j] - expectation) }
        }
    }

    /// The swapped prediction loss, codes held fixed: ½ mean over images of
    /// CE(teacher codes, softmax(z_s/τs)) + CE(student codes, softmax(z_t/τs)). Expects the
    /// student's log-predictions already in place; writes the teacher's.
    static func swappedPredictionLoss(studentLogProbabilities lq: UnsafePointer<Float>, teacherLogits zt: UnsafePointer<Float>,
                                      teacherCodes qt: UnsafePointer<Float>, studentCodes qs: UnsafePointer<Float>,
                                      teacherLogProbabilities lt: UnsafeMutablePointer<Float>, batch: Int, k: Int, tauS: Float) -> Double {
        var loss = 0.0
        for b in 0..<batch {
            let row = b * k
            for j in 0..<k { lt[row + j] = zt[row + j] / tauS }
            logSoftmaxInPlace(lt + row, count: k)
            for j in 0..<k { loss -= Double(qt[row + j]) * Double(lq[row + j]) + Double(qs[row + j]) * Double(lt[row + j]) }
        }
        return loss / Double(2 * batch)
    }

    /// d(weight · loss)/dz for each head: weight (softmax(z/τs) − the other head's codes) / (2 B τs).
    static func swappedPredictionGradients(studentLogProbabilities lq: UnsafePointer<Float>, teacherLogProbabilities lt: UnsafePointer<Float>,
                                           teacherCodes qt: UnsafePointer<Float>, studentCodes qs: UnsafePointer<Float>, weight: Float,
                                           batch: Int, k: Int, tauS: Float, student: UnsafeMutablePointer<Float>, teacher: UnsafeMutablePointer<Float>) {
        let scale = weight / (2 * Float(batch) * tauS)
        for i in 0..<(batch * k) {
            student[i] = scale * (expf(lq[i]) - qt[i])
            teacher[i] = scale * (expf(lt[i]) - qs[i])
        }
    }

    /// Balanced targets [B, K]: exp(z/τ) scaled alternately so every prototype holds 1/K of the
    /// batch and every image 1/B (three rounds, as SwAV and DINOv2), then each row renormalised
    /// to a distribution. In doubles: the exponentials span many orders of magnitude.
    private func sinkhornTargets(_ logits: UnsafePointer<Float>, temperature: Float, into out: UnsafeMutablePointer<Float>) {
        let k = config.prototypes
        let largest = (0..<(batch * k)).map { Double(logits[$0]) }.max() ?? 0
        var q = (0..<(batch * k)).map { exp((Double(logits[$0]) - largest) / Double(temperature)) }
        let total = q.reduce(0, +)
        for i in q.indices { q[i] /= total }
        for _ in 0..<3 {
            for j in 0..<k {
                var column = 0.0
                for b in 0..<batch { column += q[b * k + j] }
                guard column > 0 else { continue }
                for b in 0..<batch { q[b * k + j] /= column * Double(k) }
            }
            for b in 0..<batch {
                var row = 0.0
                for j in 0..<k { row += q[b * k + j] }
                guard row > 0 else { continue }
                for j in 0..<k { q[b * k + j] /= row * Double(batch) }
            }
        }
        for i in q.indices { out[i] = Float(q[i] * Double(batch)) }
    }

    /// Gradients of the total loss into every parameter's `grad` (accumulated: zero them first).
    public func backward() throws {
        let dMaskedDecoded = try backwardReconstruction()                           // [B·nm, dd]
        backwardDistillationLogits()
        let dLatentFromDecoder = try backwardDecoder(dMaskedDecoded)                 // [B·nv, d]
        let dLatentFromStudent = try studentHead.backward(studentLogitGradient.pointer)  // [B·nv, d]
        let rows = batch * mask.visible[0].count * config.width
        for i in 0..<rows { dLatentFromDecoder[i] += dLatentFromStudent[i] }
        try encoder.backward(dLatentFromDecoder)
    }

    /// d/dpred of (1−p)·mean (pred − target)², through decoder_pred → [B·nm, dd].
    private func backwardReconstruction() throws -> UnsafeMutablePointer<Float> {
        let values = batch * mask.masked[0].count * config.patchValues
        predictionGradient.reserve(values)
        let prediction = decoderPred.output.pointer
        let scale = (1 - Float(config.distillationWeight)) * 2 / Float(values)
        for i in 0..<values { predictionGradient[i] = scale * (prediction[i] - target[i]) }
        return try decoderPred.backward(predictionGradient.pointer)
    }

    /// The distillation loss on the pooled logits: dL/dz_s = p (q − P) / (B τs);
    /// dL/dz_t = p/τt · P ⊙ (g − Σ P g), g = −log q / B.
    private func backwardDistillationLogits() {
        let k = config.prototypes, p = Float(config.distillationWeight)
        let tauT = teacherTemperature, tauS = Float(config.studentTemperature)
        studentLogitGradient.reserve(batch * k)
        teacherLogitGradient.reserve(batch * k)
        if config.teacherTargets == .swapped {
            Self.swappedPredictionGradients(studentLogProbabilities: studentLogProbabilities.pointer, teacherLogProbabilities: teacherLogProbabilities.pointer,
                                            teacherCodes: teacherProbabilities.pointer, studentCodes: studentCodes.pointer, weight: p,
                                            batch: batch, k: k, tauS: tauS, student: studentLogitGradient.pointer, teacher: teacherLogitGradient.pointer)
        } else {
            for b in 0..<batch {
                let pt = teacherProbabilities.pointer + b * k, lq = studentLogProbabilities.pointer + b * k
                var expectation: Float = 0
                for j in 0..<k { expectation += pt[j] * (-lq[j] / Float(batch)) }
                for j in 0..<k {
                    studentLogitGradient[b * k + j] = p * (expf(lq[j]) - pt[j]) / (Float(batch) * tauS)
                    teacherLogitGradient[b * k + j] = p / tauT * pt[j] * (-lq[j] / Float(batch) - expectation)
                }
            }
        }
        if config.meanEntropyWeight > 0 {
            let weight = p * Float(config.meanEntropyWeight)
            Self.addMeanEntropyGradients(logProbabilities: studentLogProbabilities.pointer, weight: weight,
                                         batch: batch, k: k, tau: tauS, into: studentLogitGradient.pointer)
            if let tau = trainedTeacherTemperature {
                Self.addMeanEntropyGradients(logProbabilities: teacherLogProbabilities.pointer, weight: weight,
                                             batch: batch, k: k, tau: tau, into: teacherLogitGradient.pointer)
            }
        }
    }

    /// Through the decoder: visible rows take the teacher head's gradient, masked rows
    /// decoder_pred's; the mask token sums its rows; returns the gradient of the latent [B·nv, d].
    private func backwardDecoder(_ dMaskedDecoded: UnsafePointer<Float>) throws -> UnsafeMutablePointer<Float> {
        let nv = mask.visible[0].count, nm = mask.masked[0].count, L = config.tokens, dd = config.decoderWidth
        decodedGradient.reserve(batch * L * dd)
        let dDecoded = decodedGradient.pointer                                   // [B·L, dd]
        if config.teacherStopGradient || config.teacherTargets == .sinkhorn {
            // Balanced targets are fixed, as in SwAV: no gradient reaches the teacher through P.
            for b in 0..<batch { (dDecoded + b * L * dd).update(repeating: 0, count: nv * dd) }
        } else {
            let dVisible = try teacherHead.backward(teacherLogitGradient.pointer)    // [B·nv, dd]
            for b in 0..<batch { (dDecoded + b * L * dd).update(from: dVisible + b * nv * dd, count: nv * dd) }
        }
        for b in 0..<batch { (dDecoded + (b * L + nv) * dd).update(from: dMaskedDecoded + b * nm * dd, count: nm * dd) }

        var dy = decoderNorm.backward(dDecoded)                                  // [B·L, dd]
        for block in decoderBlocks.reversed() { dy = try block.backward(dy) }
        for b in 0..<batch {
            for i in 0..<nm {
                let row = dy + (b * L + nv + i) * dd
                for j in 0..<dd { maskToken.grad[j] += row[j] }
            }
        }
        latentGradient.reserve(batch * nv * dd)
        for b in 0..<batch { (latentGradient.pointer + b * nv * dd).update(from: dy + b * L * dd, count: nv * dd) }
        return try decoderEmbed.backward(latentGradient.pointer)                     // [B·nv, d]
    }

    /// Updates the teacher centre after an optimiser step, from this batch alone.
    public func updateCenter() {
        updateCenter(sums: centreSums(), images: batch)
    }

    /// What the centre tracks (teacher probabilities or logits), summed over this batch's images [K].
    public func centreSums() -> [Float] {
        let k = config.prototypes
        let source = config.centerMode == .probabilities ? teacherProbabilities : teacherPooled
        return (0..<k).map { j in
            var sum: Float = 0
            for b in 0..<batch { sum += source[b * k + j] }
            return sum
        }
    }

    /// Moves the centre towards the mean of `images` images whose `centreSums` are `sums`
    /// (a data-parallel job adds every rank's sums first).
    public func updateCenter(sums: [Float], images: Int) {
        let m = Float(config.centerMomentum)
        for j in 0..<config.prototypes { center[j] = m * center[j] + (1 - m) * sums[j] / Float(images) }
    }

    // MARK: Outputs exposed for checks and pictures

    public var latent: [Float] { Array(UnsafeBufferPointer(start: encoded, count: batch * mask.visible[0].count * config.width)) }
    public var prediction: [Float] { Array(UnsafeBufferPointer(start: decoderPred.output.pointer, count: batch * mask.masked[0].count * config.patchValues)) }
    public var studentPooledLogits: [Float] { Array(UnsafeBufferPointer(start: studentPooled.pointer, count: batch * config.prototypes)) }
    public var teacherPooledLogits: [Float] { Array(UnsafeBufferPointer(start: teacherPooled.pointer, count: batch * config.prototypes)) }
    public var teacherDistribution: [Float] { Array(UnsafeBufferPointer(start: teacherProbabilities.pointer, count: batch * config.prototypes)) }

    // MARK: Downstream features

    /// Mean over all tokens of the normalised encoder output, no masking: [batch, width].
    public func features(images: UnsafePointer<Float>, batch: Int) throws -> [Float] {
        let d = config.width, plane = 3 * config.imageSize * config.imageSize
        var features = [Float](repeating: 0, count: batch * d)
        // Encoded a few images at a time: every layer keeps its activations for backward, so
        // memory grows with the rows in flight, while GEMMs of 16 images' tokens already run at speed.
        let chunk = Self.inferenceChunk
        try features.withUnsafeMutableBufferPointer { out in
            for start in stride(from: 0, to: batch, by: chunk) {
                let count = min(chunk, batch - start)
                try encodeAllTokens(images + start * plane, batch: count, into: out.baseAddress! + start * d)
            }
        }
        return features
    }

    static let inferenceChunk = 16

    private func encodeAllTokens(_ images: UnsafePointer<Float>, batch: Int, into out: UnsafeMutablePointer<Float>) throws {
        let L = config.tokens
        let latent = try encode(images, batch: batch, tokens: [[Int]](repeating: Array(0..<L), count: batch), keepsForBackward: false)  // [B·L, d]
        meanPool(latent, groups: batch, rows: L, width: config.width, into: out)                            // [B, d]
    }
}

/// Mean of consecutive groups of `rows` rows: [groups·rows, width] → [groups, width].
func meanPool(_ x: UnsafePointer<Float>, groups: Int, rows: Int, width: Int, into out: UnsafeMutablePointer<Float>) {
    let inverse = 1 / Float(rows)
    for g in 0..<groups {
        let base = x + g * rows * width, o = out + g * width
        o.update(repeating: 0, count: width)
        for i in 0..<rows { for j in 0..<width { o[j] += base[i * width + j] } }
        for j in 0..<width { o[j] *= inverse }
    }
}
