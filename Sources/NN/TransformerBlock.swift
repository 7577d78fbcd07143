/// Pre-norm ViT block (timm): x += proj(attn(norm1(x))); x += fc2(gelu(fc1(norm2(x)))).
public final class TransformerBlock {
    public let norm1: LayerNorm
    public let qkv: Linear
    public let attention: Attention
    public let projection: Linear
    public let norm2: LayerNorm
    public let fc1: Linear
    public let gelu = GELU()
    public let fc2: Linear
    public let width: Int

    /// x + attention branch, then the block output.
    private let residual = Buffer(count: 0)
    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    private var rows = 0

    public init(_ name: String, width: Int, heads: Int, mlpRatio: Int = 4) {
        self.width = width
        norm1 = LayerNorm(name + ".norm1", width: width)
        qkv = Linear(name + ".attn.qkv", inputs: width, outputs: 3 * width)
        attention = Attention(width: width, heads: heads)
        projection = Linear(name + ".attn.proj", inputs: width, outputs: width)
        norm2 = LayerNorm(name + ".norm2", width: width)
        fc1 = Linear(name + ".mlp.fc1", inputs: width, outputs: mlpRatio * width)
        fc2 = Linear(name + ".mlp.fc2", inputs: mlpRatio * width, outputs: width)
    }

    public var parameters: [Parameter] {
        norm1.parameters + qkv.parameters + projection.parameters + norm2.parameters + fc1.parameters + fc2.parameters
    }

    /// `keepsForBackward` false (inference) lets layers skip what only backward reads.
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, batch: Int, tokens: Int, keepsForBackward: Bool = true) -> UnsafeMutablePointer<Float> {
        rows = batch * tokens
        let count = rows * width
        residual.reserve(count)
        output.reserve(count)
        let q = normalisedProduct(norm1, qkv, x)                                // [rows, 3·width]
        let a = projection.forward(attention.forward(q, batch: batch, tokens: tokens), rows: rows)  // [rows, width]
        let x1 = residual.pointer
        Parallel.forChunks(count, grain: 65536) { range in for i in range { x1[i] = x[i] + a[i] } }
        let hidden = normalisedProduct(norm2, fc1, x1)                          // [rows, 4·width]
        let m = activatedProduct(hidden, keepsForBackward: keepsForBackward)    // [rows, width]
        let y = output.pointer
        Parallel.forChunks(count, grain: 65536) { range in for i in range { y[i] = x1[i] + m[i] } }
        return y
    }

    /// linear(norm(x)); in bf16 the norm writes the product's bfloat16 input itself.
    private func normalisedProduct(_ norm: LayerNorm, _ linear: Linear, _ x: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        guard let staged = linear.bf16Input(rows: rows) else { return linear.forward(norm.forward(x, rows: rows), rows: rows) }
        norm.forward(x, rows: rows, bf16: staged)
        return linear.forwardFilled(rows: rows)
    }

    /// fc2(gelu(hidden)); in bf16 GELU writes fc2's bfloat16 input itself.
    private func activatedProduct(_ hidden: UnsafePointer<Float>, keepsForBackward: Bool) -> UnsafeMutablePointer<Float> {
        let count = rows * fc1.outputs
        guard let staged = fc2.bf16Input(rows: rows) else {
            return fc2.forward(gelu.forward(hidden, count: count, keepsForBackward: keepsForBackward), rows: rows)
        }
        gelu.forward(hidden, count: count, bf16: staged, keepsForBackward: keepsForBackward)
        return fc2.forwardFilled(rows: rows)
    }

    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        let count = rows * width
        inputGradient.reserve(count)
        let dx = inputGradient.pointer
        let dMLP = norm2.backward(fc1.backward(gelu.backward(fc2.backward(dy))))
        Parallel.forChunks(count, grain: 65536) { range in for i in range { dx[i] = dy[i] + dMLP[i] } }
        let dAttention = norm1.backward(qkv.backward(attention.backward(projection.backward(dx))))
        Parallel.forChunks(count, grain: 65536) { range in for i in range { dx[i] += dAttention[i] } }
        return dx
    }
}
