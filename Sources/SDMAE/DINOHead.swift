import NN

/// DINO projection head: Linear → GELU → Linear → GELU → Linear → L2-normalise → weight-normed
/// Linear to K prototypes (names as the authors' code: mlp.0, mlp.2, mlp.4, last_layer), with
/// the logits mean-pooled over each group of token rows.
///
/// The last layer is linear without bias, so pooling its logits equals applying it to the pooled
/// normalised bottleneck: it then runs on one row per image instead of one per token.
public final class DINOHead {
    let fc0: Linear
    let gelu0 = GELU()
    let fc2: Linear
    let gelu2 = GELU()
    let fc4: Linear
    let normalize: L2Normalize
    let lastLayer: WeightNormLinear
    private let pooled = Buffer(count: 0)
    private let tokenGradient = Buffer(count: 0)
    private var groups = 0
    private var rowsPerGroup = 0

    public init(_ name: String, inputs: Int, hidden: Int, bottleneck: Int, prototypes: Int) {
        fc0 = Linear(name + ".mlp.0", inputs: inputs, outputs: hidden)
        fc2 = Linear(name + ".mlp.2", inputs: hidden, outputs: hidden)
        fc4 = Linear(name + ".mlp.4", inputs: hidden, outputs: bottleneck)
        normalize = L2Normalize(width: bottleneck)
        lastLayer = WeightNormLinear(name + ".last_layer", inputs: bottleneck, outputs: prototypes)
    }

    public var parameters: [Parameter] { fc0.parameters + fc2.parameters + fc4.parameters + lastLayer.parameters }

    /// Pooled logits [groups, K] of `groups` consecutive blocks of `rowsPerGroup` token rows.
    public func forward(_ x: UnsafePointer<Float>, groups: Int, rowsPerGroup: Int) throws -> UnsafeMutablePointer<Float> {
        self.groups = groups
        self.rowsPerGroup = rowsPerGroup
        let rows = groups * rowsPerGroup, width = fc4.outputs
        let h0 = try gelu0.forward(fc0.forward(x, rows: rows), count: rows * fc0.outputs)
        let h2 = try gelu2.forward(fc2.forward(h0, rows: rows), count: rows * fc2.outputs)
        let normalised = try normalize.forward(fc4.forward(h2, rows: rows), rows: rows)
        pooled.reserve(groups * width)
        meanPool(normalised, groups: groups, rows: rowsPerGroup, width: width, into: pooled.pointer)
        return try lastLayer.forward(pooled.pointer, rows: groups)
    }

    /// From d(pooled logits) [groups, K] to d(input) [rows, din]; each token gets 1/rowsPerGroup
    /// of its group's gradient.
    public func backward(_ dLogits: UnsafePointer<Float>) throws -> UnsafeMutablePointer<Float> {
        let width = fc4.outputs, rows = groups * rowsPerGroup
        let dPooled = try lastLayer.backward(dLogits)
        tokenGradient.reserve(rows * width)
        let share = 1 / Float(rowsPerGroup)
        for g in 0..<groups {
            for r in 0..<rowsPerGroup {
                let row = tokenGradient.pointer + (g * rowsPerGroup + r) * width
                for j in 0..<width { row[j] = dPooled[g * width + j] * share }
            }
        }
        let d4 = try fc4.backward(normalize.backward(tokenGradient.pointer))
        return try fc0.backward(gelu0.backward(fc2.backward(gelu2.backward(d4))))
    }
}
