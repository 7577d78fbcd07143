/// The MLP between a block's two products: GELU, or timm's packed SwiGLU (`fc1` writes gate and
/// value side by side, `fc2` reads half as many features).
public enum MLPKind: String, Sendable, Codable, CaseIterable {
    case gelu = "mlp"
    case swigluPacked = "swiglu_packed"
}

/// Pre-norm ViT block (timm): x += ls1(proj(attn(norm1(x)))); x += ls2(fc2(act(fc1(norm2(x))))).
/// LayerScale is absent (identity) unless asked for.
public final class TransformerBlock {
    public let norm1: LayerNorm
    public let qkv: Linear
    public let attention: Attention
    public let projection: Linear
    public let layerScale1: LayerScale?
    public let norm2: LayerNorm
    public let fc1: Linear
    public let mlp: MLPKind
    public let gelu = GELU()
    public let swiglu = SwiGLU()
    public let fc2: Linear
    public let layerScale2: LayerScale?
    public let width: Int

    /// x + attention branch, then the block output.
    private let residual = Buffer(count: 0)
    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    private var rows = 0

    /// `hidden` is fc1's output width (for SwiGLU the packed gate and value, fc2 reading half).
    public init(_ name: String, width: Int, heads: Int, hidden: Int, mlp: MLPKind = .gelu, layerScale: Bool = false,
                normEpsilon: Float = 1e-6) {
        self.width = width
        self.mlp = mlp
        norm1 = LayerNorm(name + ".norm1", width: width, epsilon: normEpsilon)
        qkv = Linear(name + ".attn.qkv", inputs: width, outputs: 3 * width)
        attention = Attention(width: width, heads: heads)
        projection = Linear(name + ".attn.proj", inputs: width, outputs: width)
        layerScale1 = layerScale ? LayerScale(name + ".ls1", width: width) : nil
        norm2 = LayerNorm(name + ".norm2", width: width, epsilon: normEpsilon)
        fc1 = Linear(name + ".mlp.fc1", inputs: width, outputs: hidden)
        fc2 = Linear(name + ".mlp.fc2", inputs: mlp == .swigluPacked ? hidden / 2 : hidden, outputs: width)
        layerScale2 = layerScale ? LayerScale(name + ".ls2", width: width) : nil
    }

    public convenience init(_ name: String, width: Int, heads: Int, mlpRatio: Int = 4) {
        self.init(name, width: width, heads: heads, hidden: mlpRatio * width)
    }

    /// In timm's order within the block (its state-dict order).
    public var parameters: [Parameter] {
        norm1.parameters + qkv.parameters + projection.parameters + (layerScale1?.parameters ?? []) + norm2.parameters
            + fc1.parameters + fc2.parameters + (layerScale2?.parameters ?? [])
    }

    public var linears: [Linear] { [qkv, projection, fc1, fc2] }

    /// Uses `other`'s activation memory. Safe when the two never run at once and neither's
    /// activations are read after the other runs: blocks two apart in an inference-only network
    /// (block i reads block i−1's output, which lives in the other half).
    public func shareActivations(with other: TransformerBlock) {
        for (mine, theirs) in [(residual, other.residual), (output, other.output), (inputGradient, other.inputGradient)] { mine.share(theirs) }
        for (mine, theirs) in zip([norm1, norm2], [other.norm1, other.norm2]) { mine.shareActivations(with: theirs) }
        for (mine, theirs) in zip(linears, other.linears) { mine.shareActivations(with: theirs) }
        attention.shareActivations(with: other.attention)
        gelu.shareActivations(with: other.gelu)
        swiglu.shareActivations(with: other.swiglu)
        if let mine = layerScale1, let theirs = other.layerScale1 { mine.shareActivations(with: theirs) }
        if let mine = layerScale2, let theirs = other.layerScale2 { mine.shareActivations(with: theirs) }
    }

    /// `keepsForBackward` false (inference) lets layers skip what only backward reads.
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, batch: Int, tokens: Int, keepsForBackward: Bool = true) throws -> UnsafeMutablePointer<Float> {
        rows = batch * tokens
        let count = rows * width
        residual.reserve(count)
        output.reserve(count)
        let q = try normalisedProduct(norm1, qkv, x)                                // [rows, 3·width]
        let p = try projection.forward(attention.forward(q, batch: batch, tokens: tokens), rows: rows)  // [rows, width]
        let a = layerScale1.map { $0.forward(p, rows: rows) } ?? p             // [rows, width]
        let x1 = residual.pointer
        Parallel.forChunks(count, grain: 65536) { range in for i in range { x1[i] = x[i] + a[i] } }
        let f = try multiLayerPerceptron(x1, keepsForBackward: keepsForBackward)    // [rows, width]
        let m = layerScale2.map { $0.forward(f, rows: rows) } ?? f             // [rows, width]
        let y = output.pointer
        Parallel.forChunks(count, grain: 65536) { range in for i in range { y[i] = x1[i] + m[i] } }
        return y
    }

    /// The block's output for the first token of each sequence alone (the class token), [batch,
    /// width]: all that `token` pooling reads of the last block. Keys and values still come from
    /// every token; the rest of the block runs on `batch` rows instead of batch·tokens.
    public func forwardFirstToken(_ x: UnsafePointer<Float>, batch: Int, tokens: Int) throws -> UnsafeMutablePointer<Float> {
        rows = batch * tokens
        let q = try normalisedProduct(norm1, qkv, x)                                // [rows, 3·width]
        let o = attention.forwardFirstQuery(q, batch: batch, tokens: tokens)    // [batch, width]
        rows = batch
        let p = try projection.forward(o, rows: batch)                              // [batch, width]
        let a = layerScale1.map { $0.forward(p, rows: batch) } ?? p            // [batch, width]
        residual.reserve(batch * width)
        output.reserve(batch * width)
        let x1 = residual.pointer, width = width
        for b in 0..<batch { for i in 0..<width { x1[b * width + i] = x[b * tokens * width + i] + a[b * width + i] } }
        let f = try multiLayerPerceptron(x1, keepsForBackward: false)               // [batch, width]
        let m = layerScale2.map { $0.forward(f, rows: batch) } ?? f            // [batch, width]
        let y = output.pointer
        for i in 0..<(batch * width) { y[i] = x1[i] + m[i] }
        return y
    }

    /// linear(norm(x)); in bf16 the norm writes the product's bfloat16 input itself.
    private func normalisedProduct(_ norm: LayerNorm, _ linear: Linear, _ x: UnsafePointer<Float>) throws -> UnsafeMutablePointer<Float> {
        guard let staged = linear.bf16Input(rows: rows) else { return try linear.forward(norm.forward(x, rows: rows), rows: rows) }
        norm.forward(x, rows: rows, bf16: staged)
        return try linear.forwardFilled(rows: rows)
    }

    /// fc2(act(fc1(norm2(x)))). A bf16 inference runs fc1 and GELU as one product that writes
    /// fc2's bfloat16 input: the widest activation never exists in fp32.
    private func multiLayerPerceptron(_ x: UnsafePointer<Float>, keepsForBackward: Bool) throws -> UnsafeMutablePointer<Float> {
        if !keepsForBackward, mlp == .gelu, let staged = fc1.bf16Input(rows: rows), let hidden = fc2.bf16Input(rows: rows) {
            norm2.forward(x, rows: rows, bf16: staged)
            try fc1.forwardFilledGELU(rows: rows, into: hidden)
            return try fc2.forwardFilled(rows: rows)
        }
        return try activatedProduct(normalisedProduct(norm2, fc1, x), keepsForBackward: keepsForBackward)
    }

    /// fc2(act(hidden)); in bf16 GELU writes fc2's bfloat16 input itself.
    private func activatedProduct(_ hidden: UnsafePointer<Float>, keepsForBackward: Bool) throws -> UnsafeMutablePointer<Float> {
        if mlp == .swigluPacked {
            return try fc2.forward(swiglu.forward(hidden, rows: rows, width: fc1.outputs), rows: rows)
        }
        let count = rows * fc1.outputs
        guard let staged = fc2.bf16Input(rows: rows) else {
            return try fc2.forward(gelu.forward(hidden, count: count, keepsForBackward: keepsForBackward), rows: rows)
        }
        gelu.forward(hidden, count: count, bf16: staged, keepsForBackward: keepsForBackward)
        return try fc2.forwardFilled(rows: rows)
    }

    private func activationBackward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        mlp == .swigluPacked ? swiglu.backward(dy) : gelu.backward(dy)
    }

    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) throws -> UnsafeMutablePointer<Float> {
        let count = rows * width
        inputGradient.reserve(count)
        let dx = inputGradient.pointer
        let dF = layerScale2.map { UnsafePointer($0.backward(dy)) } ?? dy
        let dMLP = try norm2.backward(fc1.backward(activationBackward(fc2.backward(dF))))
        Parallel.forChunks(count, grain: 65536) { range in for i in range { dx[i] = dy[i] + dMLP[i] } }
        let dP = layerScale1.map { UnsafePointer($0.backward(dx)) } ?? UnsafePointer(dx)
        let dAttention = try norm1.backward(qkv.backward(attention.backward(projection.backward(dP))))
        Parallel.forChunks(count, grain: 65536) { range in for i in range { dx[i] += dAttention[i] } }
        return dx
    }
}
