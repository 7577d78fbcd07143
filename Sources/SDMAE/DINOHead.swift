import NN

/// DINO projection head: Linear → GELU → Linear → GELU → Linear → L2-normalise → weight-normed
/// Linear to K prototypes (names as the authors' code: mlp.0, mlp.2, mlp.4, last_layer).
public final class DINOHead {
    let fc0: Linear
    let gelu0 = GELU()
    let fc2: Linear
    let gelu2 = GELU()
    let fc4: Linear
    let normalize: L2Normalize
    let lastLayer: WeightNormLinear

    public init(_ name: String, inputs: Int, hidden: Int, bottleneck: Int, prototypes: Int) {
        fc0 = Linear(name + ".mlp.0", inputs: inputs, outputs: hidden)
        fc2 = Linear(name + ".mlp.2", inputs: hidden, outputs: hidden)
        fc4 = Linear(name + ".mlp.4", inputs: hidden, outputs: bottleneck)
        normalize = L2Normalize(width: bottleneck)
        lastLayer = WeightNormLinear(name + ".last_layer", inputs: bottleneck, outputs: prototypes)
    }

    public var parameters: [Parameter] { fc0.parameters + fc2.parameters + fc4.parameters + lastLayer.parameters }

    /// Logits [rows, K].
    public func forward(_ x: UnsafePointer<Float>, rows: Int) -> UnsafeMutablePointer<Float> {
        let h0 = gelu0.forward(fc0.forward(x, rows: rows), count: rows * fc0.outputs)
        let h2 = gelu2.forward(fc2.forward(h0, rows: rows), count: rows * fc2.outputs)
        return lastLayer.forward(normalize.forward(fc4.forward(h2, rows: rows), rows: rows), rows: rows)
    }

    public func backward(_ dLogits: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        let d4 = fc4.backward(normalize.backward(lastLayer.backward(dLogits)))
        return fc0.backward(gelu0.backward(fc2.backward(gelu2.backward(d4))))
    }
}
