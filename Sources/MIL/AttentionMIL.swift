import Foundation
import NN

/// What the model says about one bag.
public struct BagOutput: Sendable {
    /// s, one score per tile before the softmax (CLAM's `A_raw`): what heatmaps rank.
    public var rawAttention: [Float]
    /// softmax of s over the bag's tiles.
    public var attention: [Float]
    public var logits: [Float]
    public var probabilities: [Float]
}

/// The loss of one bag: `total = w·bag + (1−w)·instance` (w = bag_weight), or the bag loss alone
/// when there is no instance branch or the bag has fewer than 2k tiles.
public struct BagLoss: Sendable {
    public var bag: Float
    public var instance: Float?
    public var total: Float
}

/// CLAM-SB and ABMIL (Ilse et al. 2018; Lu et al. 2021): gated attention pools a bag of tile
/// features into one vector that a linear layer classifies. Parameter names are CLAM's state-dict
/// keys. Layers own their buffers, sized by the largest bag seen, so memory follows the bag and not
/// the cohort.
public final class AttentionMIL {
    public let config: MILConfig
    let hiddenLayer: Linear          // attention_net.0
    let relu = ReLU()
    let dropout: Dropout             // attention_net.2
    let attentionA: Linear           // attention_net.3.attention_a.0, then tanh
    let attentionB: Linear           // attention_net.3.attention_b.0, then sigmoid
    let gate = TanhSigmoidGate()
    let attentionC: Linear           // attention_net.3.attention_c
    let classifier: Linear           // classifiers
    let instanceClassifiers: [Linear] // instance_classifiers.<c>

    // Activations of the last forward pass.
    private var tiles = 0
    private var hidden: UnsafeMutablePointer<Float> { dropout.output.pointer }   // N×L
    private let attention = Buffer(count: 0)   // N
    private let pooled = Buffer(count: 0)      // L
    private var probabilities: [Float] = []
    // The instance branch's last selection: rows of h per class and their pseudo-labels.
    private var instanceRows: [[Int]] = []
    private var instanceTargets: [[Int]] = []
    private let instanceInputs: [Buffer]
    // Gradient scratch.
    private let hiddenGradient = Buffer(count: 0)  // N×L

    public init(config: MILConfig) {
        self.config = config
        let (d, l, da, c) = (config.embedDim, config.hidden, config.attentionWidth, config.classes)
        hiddenLayer = Linear("attention_net.0", inputs: d, outputs: l)
        hiddenLayer.computesInputGradient = false
        dropout = Dropout(rate: Float(config.dropout))
        attentionA = Linear("attention_net.3.attention_a.0", inputs: l, outputs: da)
        attentionB = Linear("attention_net.3.attention_b.0", inputs: l, outputs: da)
        attentionC = Linear("attention_net.3.attention_c", inputs: da, outputs: 1)
        classifier = Linear("classifiers", inputs: l, outputs: c)
        classifier.computesInputGradient = true
        instanceClassifiers = config.hasInstanceBranch ? (0..<c).map { Linear("instance_classifiers.\($0)", inputs: l, outputs: 2) } : []
        instanceInputs = instanceClassifiers.map { _ in Buffer(count: 0) }
        // CLAM's optimiser decays every parameter, biases included.
        for parameter in parameters { parameter.decay = true }
    }

    public var parameters: [Parameter] {
        [hiddenLayer, attentionA, attentionB, attentionC, classifier].flatMap(\.parameters) + instanceClassifiers.flatMap(\.parameters)
    }

    /// CLAM's initialisation: Xavier-normal weights, zero biases.
    public func initialise(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for parameter in parameters {
            if parameter.shape.count == 2 {
                let std = (2 / Float(parameter.shape[0] + parameter.shape[1])).squareRoot()
                parameter.initialiseNormal(std: std, using: &generator)
            } else {
                parameter.value.zero()
            }
        }
    }

    // MARK: Forward

    /// Runs the bag through the network; `features` is N×D, row-major.
    public func forward(_ features: UnsafePointer<Float>, tiles: Int, training: Bool = false,
                        using generator: inout SeededGenerator) throws -> BagOutput {
        let raw = try attend(features, tiles: tiles, training: training, using: &generator)
        let logits = try classify()
        return BagOutput(rawAttention: raw, attention: Array(UnsafeBufferPointer(start: attention.pointer, count: tiles)),
                         logits: logits, probabilities: probabilities)
    }

    /// Inference on a bag held in an array; `FeatureBag.read` has already refused empty bags.
    public func predict(_ features: [Float]) throws -> BagOutput {
        precondition(features.count >= config.embedDim, "a bag needs at least one tile")
        var unused = SeededGenerator(seed: 0)
        return try features.withUnsafeBufferPointer { try forward($0.baseAddress!, tiles: features.count / config.embedDim, using: &unused) }
    }

    /// h = dropout(ReLU(W1 x + b1)); s = wc (tanh(Va h) ⊙ sigmoid(Vb h)) + bc; A = softmax(s).
    /// Returns s.
    private func attend(_ x: UnsafePointer<Float>, tiles: Int, training: Bool, using generator: inout SeededGenerator) throws -> [Float] {
        self.tiles = tiles
        instanceRows = []
        instanceTargets = []
        let (l, da) = (config.hidden, config.attentionWidth)
        let preActivation = try hiddenLayer.forward(x, rows: tiles)                                   // N×L
        let rectified = relu.forward(preActivation, count: tiles * l)                             // N×L
        let h = dropout.forward(rectified, count: tiles * l, training: training, using: &generator) // N×L
        let u = try attentionA.forward(h, rows: tiles)                                                // N×Da
        let v = try attentionB.forward(h, rows: tiles)                                                // N×Da
        let gated = gate.forward(u, v, count: tiles * da)                                         // N×Da
        let scores = try attentionC.forward(gated, rows: tiles)                                       // N×1
        let raw = Array(UnsafeBufferPointer(start: scores, count: tiles))
        attention.reserve(tiles)
        attention.pointer.update(from: scores, count: tiles)
        softmaxInPlace(attention.pointer, count: tiles)                                           // N
        return raw
    }

    /// M = A h, logits = Wk M + bk.
    private func classify() throws -> [Float] {
        let l = config.hidden
        pooled.reserve(l)
        gemv(transpose: true, m: tiles, n: l, hidden, lda: l, attention.pointer, pooled.pointer)  // L
        let logits = try Array(UnsafeBufferPointer(start: classifier.forward(pooled.pointer, rows: 1), count: config.classes)) // C
        var p = logits
        p.withUnsafeMutableBufferPointer { softmaxInPlace($0.baseAddress!, count: config.classes) }
        probabilities = p
        return logits
    }

    // MARK: Losses

    /// Cross-entropy of the bag's class probabilities against `label`.
    public func bagLoss(label: Int) -> Float {
        -logf(max(probabilities[label], .leastNormalMagnitude))
    }

    /// CLAM's instance loss: the true class's classifier learns its k most attended tiles as
    /// positive and its k least attended as negative; in subtyping mode every other class's
    /// classifier learns its k most attended as negative, and the losses are averaged over
    /// classes. Nil without an instance branch or for a bag of fewer than 2k tiles.
    public func instanceLoss(label: Int) throws -> Float? {
        instanceRows = []
        instanceTargets = []
        let k = config.kSample
        guard config.hasInstanceBranch, tiles >= 2 * k else { return nil }
        let order = (0..<tiles).sorted { attention[$0] != attention[$1] ? attention[$0] > attention[$1] : $0 < $1 }
        let top = Array(order.prefix(k)), bottom = Array(order.suffix(k).reversed())
        var total: Float = 0
        for c in 0..<config.classes {
            let rows: [Int], targets: [Int]
            if c == label {
                (rows, targets) = (top + bottom, Array(repeating: 1, count: k) + Array(repeating: 0, count: k))
            } else if config.subtyping {
                (rows, targets) = (top, Array(repeating: 0, count: k))
            } else {
                (rows, targets) = ([], [])
            }
            instanceRows.append(rows)
            instanceTargets.append(targets)
            guard !rows.isEmpty else { continue }
            let logits = try instanceLogits(c)
            for (r, target) in targets.enumerated() {
                var pair = [logits[2 * r], logits[2 * r + 1]]
                pair.withUnsafeMutableBufferPointer { logSoftmaxInPlace($0.baseAddress!, count: 2) }
                total -= pair[target] / Float(rows.count)
            }
        }
        return config.subtyping ? total / Float(config.classes) : total
    }

    /// Instance classifier c on its selected rows of h: 2 logits per row.
    private func instanceLogits(_ c: Int) throws -> UnsafeMutablePointer<Float> {
        let l = config.hidden, rows = instanceRows[c]
        let input = instanceInputs[c]
        input.reserve(rows.count * l)
        for (r, row) in rows.enumerated() { (input.pointer + r * l).update(from: hidden + row * l, count: l) }
        return try instanceClassifiers[c].forward(input.pointer, rows: rows.count)
    }

    /// Both losses of the last forward pass, weighted as CLAM weights them.
    public func loss(label: Int) throws -> BagLoss {
        let bag = bagLoss(label: label)
        guard let instance = try instanceLoss(label: label) else { return BagLoss(bag: bag, instance: nil, total: bag) }
        let w = Float(config.bagWeight)
        return BagLoss(bag: bag, instance: instance, total: w * bag + (1 - w) * instance)
    }

    // MARK: Backward

    /// Accumulates the gradient of `loss(label:)` (called just before) into every parameter.
    public func backward(label: Int) throws {
        let (l, n) = (config.hidden, tiles)
        let usesInstances = instanceRows.contains { !$0.isEmpty }
        let bagWeight: Float = usesInstances ? Float(config.bagWeight) : 1
        hiddenGradient.reserve(n * l)
        let dh = hiddenGradient.pointer
        dh.update(repeating: 0, count: n * l)

        // Bag branch: d logits = w (p − onehot).
        var dLogits = probabilities.map { bagWeight * $0 }
        dLogits[label] -= bagWeight
        let dPooled = try dLogits.withUnsafeBufferPointer { try classifier.backward($0.baseAddress!) }        // L
        // M = A h: dh += A ⊗ dM, dA_n = h_n · dM.
        var dAttention = [Float](repeating: 0, count: n)
        for t in 0..<n {
            let row = hidden + t * l, a = attention[t]
            var dot: Float = 0
            for j in 0..<l {
                dh[t * l + j] += a * dPooled[j]
                dot += row[j] * dPooled[j]
            }
            dAttention[t] = dot
        }
        // Softmax over tiles: ds = A ⊙ (dA − Σ A dA).
        var weighted: Float = 0
        for t in 0..<n { weighted += attention[t] * dAttention[t] }
        let dScores = (0..<n).map { attention[$0] * (dAttention[$0] - weighted) }                   // N×1
        // The softmax ignores a shift of every score, so bc's true gradient is 0; float rounding
        // would leave ~1e-8 there, which Adam's normalisation turns into a full learning-rate step.
        let biasGradient = attentionC.bias.map { $0.grad[0] }
        let dGated = try dScores.withUnsafeBufferPointer { try attentionC.backward($0.baseAddress!) } // N×Da
        if let bias = attentionC.bias, let biasGradient { bias.grad[0] = biasGradient }
        gate.backward(dGated)
        let fromA = try attentionA.backward(gate.gradientU.pointer)                                     // N×L
        let fromB = try attentionB.backward(gate.gradientV.pointer)                                     // N×L
        for i in 0..<(n * l) { dh[i] += fromA[i] + fromB[i] }

        if usesInstances { try instanceBackward(into: dh) }

        let dRectified = dropout.backward(dh)                                                       // N×L
        let dPreActivation = relu.backward(dRectified)                                              // N×L
        try hiddenLayer.backward(dPreActivation)
    }

    /// The instance branch: CE averaged over each classifier's rows, then over classes, added to `dh`.
    private func instanceBackward(into dh: UnsafeMutablePointer<Float>) throws {
        let l = config.hidden
        let classScale = (1 - Float(config.bagWeight)) / (config.subtyping ? Float(config.classes) : 1)
        for c in 0..<config.classes where !instanceRows[c].isEmpty {
            let rows = instanceRows[c]
            let logits = instanceClassifiers[c].output.pointer
            var dInstance = [Float](repeating: 0, count: 2 * rows.count)
            let scale = classScale / Float(rows.count)
            for r in 0..<rows.count {
                var pair = [logits[2 * r], logits[2 * r + 1]]
                pair.withUnsafeMutableBufferPointer { softmaxInPlace($0.baseAddress!, count: 2) }
                dInstance[2 * r] = scale * (pair[0] - (instanceTargets[c][r] == 0 ? 1 : 0))
                dInstance[2 * r + 1] = scale * (pair[1] - (instanceTargets[c][r] == 1 ? 1 : 0))
            }
            let dRows = try dInstance.withUnsafeBufferPointer { try instanceClassifiers[c].backward($0.baseAddress!) } // rows×L
            for (r, row) in rows.enumerated() {
                for j in 0..<l { dh[row * l + j] += dRows[r * l + j] }
            }
        }
    }
}
