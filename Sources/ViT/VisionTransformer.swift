import Foundation
import NN

/// timm's VisionTransformer, one configurable type for every published pathology encoder:
/// patch embedding, class and register tokens, learned positions (added to all tokens or to the
/// patches only), pre-norm blocks with optional LayerScale and GELU or packed SwiGLU MLPs, a
/// final norm and the pooling. Parameter names are timm's.
public final class VisionTransformer {
    public let config: ViTConfig
    /// fc1's output width, from the weights when loaded.
    public let hiddenWidth: Int
    /// The preset's name or the config file's, for features files and reports.
    public var name = "vit"
    /// The tile TRIDENT cuts for this encoder (its preset's), else what the transform resizes to.
    public var tileSize: Int

    let patchEmbed: Linear
    let classToken: Parameter
    let registerTokens: Parameter?
    let positionEmbedding: Parameter
    let blocks: [TransformerBlock]
    let norm: LayerNorm

    /// Arithmetic of the matrix products (as `SDMAEModel.precision`); set it after loading weights.
    public var precision = Precision.fp32 {
        didSet {
            for layer in [patchEmbed] + blocks.flatMap(\.linears) { layer.precision = precision }
            for block in blocks { block.attention.precision = precision }
        }
    }

    private let patches = Buffer(count: 0)
    let sequence = Buffer(count: 0)
    /// The patch part of the positions resampled to the input grid, per grid.
    private var resampledPositions: [Int: [Float]] = [:]
    /// Training (`encodeVisible`, `backwardVisible`): what the forward pass saw and the gradients.
    let latent = Buffer(count: 0)
    let tokenGradient = Buffer(count: 0)
    let embeddedGradient = Buffer(count: 0)
    var visibleTokens: [[Int]] = []
    /// Blocks whose weights stay as loaded, counted from the first; the patch embedding and the
    /// tokens stay with them. Backward stops above them.
    public var frozenBlocks = 0

    /// A network with timm's initialisation (truncated normal σ 0.02 for weights and tokens,
    /// zero biases, unit norms, LayerScale at `init_values`), deterministic given `seed`; with no
    /// seed the weights stay zero for a loader to fill (drawing 1 B numbers takes most of a minute).
    /// For inference (`trains` false) blocks two apart share their activation memory, so a ViT-g
    /// holds two blocks' activations, not forty.
    public init(config: ViTConfig, hiddenWidth: Int? = nil, seed: UInt64? = 0, trains: Bool = false) {
        self.config = config
        let d = config.width, p = config.patchSize
        let hidden = hiddenWidth ?? config.hiddenWidth
        self.hiddenWidth = hidden
        tileSize = config.transform.resize
        patchEmbed = Linear("patch_embed.proj", inputs: 3 * p * p, outputs: d, weightShape: [d, 3, p, p])
        patchEmbed.computesInputGradient = false
        classToken = Parameter("cls_token", shape: [1, 1, d], decay: false)
        registerTokens = config.registerTokens > 0 ? Parameter("reg_token", shape: [1, config.registerTokens, d], decay: false) : nil
        positionEmbedding = Parameter("pos_embed", shape: [1, config.storedPositions, d], decay: false)
        blocks = (0..<config.depth).map {
            TransformerBlock("blocks.\($0)", width: d, heads: config.heads, hidden: hidden, mlp: config.mlp,
                             layerScale: config.initValues != nil, normEpsilon: Float(config.normEpsilon))
        }
        norm = LayerNorm("norm", width: d, epsilon: Float(config.normEpsilon))
        if !trains { for i in blocks.indices.dropFirst(2) { blocks[i].shareActivations(with: blocks[i % 2]) } }
        if let seed { initialise(seed: seed) }
    }

    /// The products that may run in bf16, and the attentions.
    public var linears: [Linear] { [patchEmbed] + blocks.flatMap(\.linears) }
    public var attentions: [Attention] { blocks.map(\.attention) }

    /// In timm's state-dict order.
    public var parameters: [Parameter] {
        [classToken] + (registerTokens.map { [$0] } ?? []) + [positionEmbedding] + patchEmbed.parameters
            + blocks.flatMap(\.parameters) + norm.parameters
    }

    private func initialise(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let gamma = Float(config.initValues ?? 1)
        for parameter in parameters {
            if parameter.name.hasSuffix(".gamma") {
                for i in 0..<parameter.count { parameter.value[i] = gamma }
            } else if parameter.shape.count >= 2 {
                parameter.initialiseTruncatedNormal(std: 0.02, using: &generator)
            }
        }
    }

    /// Values per image of `features`.
    public var featureWidth: Int { config.featureWidth }

    /// Tokens per image for a `side`-pixel input: prefix, then patches.
    public func tokenCount(side: Int) -> Int {
        config.prefixTokens + (side / config.patchSize) * (side / config.patchSize)
    }

    // MARK: Forward, as timm's forward_features then forward_head

    /// `pixels` [B, 3, S, S] (the transform's output) → tokens after the final norm [B·T, D].
    public func tokens(_ pixels: UnsafePointer<Float>, batch: Int, side: Int) throws -> UnsafePointer<Float> {
        precondition(side % config.patchSize == 0, "a \(side)-px input is not a whole number of \(config.patchSize)-px patches")
        let grid = side / config.patchSize, t = tokenCount(side: side)
        let embedded = try embedPatches(pixels, batch: batch, side: side)          // [B·g², D]
        let x0 = assembleSequence(embedded, batch: batch, grid: grid)          // [B·T, D]
        var x = UnsafePointer(x0)
        for block in blocks { x = try UnsafePointer(block.forward(x, batch: batch, tokens: t, keepsForBackward: false)) }  // [B·T, D]
        return UnsafePointer(norm.forward(x, rows: batch * t))                 // [B·T, D]
    }

    /// Pooled features [B, F] of `pixels` [B, 3, S, S]. With `token` pooling the last block
    /// runs for the class token alone (the same numbers: every step after attention is per row).
    public func features(_ pixels: UnsafePointer<Float>, batch: Int, side: Int) throws -> [Float] {
        guard config.pooling == .token, let last = blocks.last else {
            return try pool(tokens(pixels, batch: batch, side: side), batch: batch, tokens: tokenCount(side: side))
        }
        let t = tokenCount(side: side), d = config.width
        let embedded = try embedPatches(pixels, batch: batch, side: side)          // [B·g², D]
        var x = UnsafePointer(assembleSequence(embedded, batch: batch, grid: side / config.patchSize))  // [B·T, D]
        for block in blocks.dropLast() { x = try UnsafePointer(block.forward(x, batch: batch, tokens: t, keepsForBackward: false)) }
        let first = try last.forwardFirstToken(x, batch: batch, tokens: t)          // [B, D]
        return Array(UnsafeBufferPointer(start: norm.forward(first, rows: batch), count: batch * d))  // [B, D]
    }

    /// A conv with kernel = stride = p is a Linear on each patch flattened channel-major.
    private func embedPatches(_ pixels: UnsafePointer<Float>, batch: Int, side: Int) throws -> UnsafeMutablePointer<Float> {
        let p = config.patchSize, grid = side / p, values = 3 * p * p
        patches.reserve(batch * grid * grid * values)
        let out = patches.pointer
        Parallel.forChunks(batch * grid) { rows in
            for row in rows {
                let b = row / grid, gy = row % grid
                for gx in 0..<grid {
                    let patch = out + ((b * grid + gy) * grid + gx) * values
                    for c in 0..<3 {
                        let plane = pixels + (b * 3 + c) * side * side
                        for y in 0..<p {
                            (patch + (c * p + y) * p).update(from: plane + (gy * p + y) * side + gx * p, count: p)
                        }
                    }
                }
            }
        }
        return try patchEmbed.forward(patches.pointer, rows: batch * grid * grid)
    }

    /// [cls, registers, patches] with positions added where the config puts them.
    private func assembleSequence(_ embedded: UnsafePointer<Float>, batch: Int, grid: Int) -> UnsafeMutablePointer<Float> {
        let d = config.width, prefix = config.prefixTokens, n = grid * grid, t = prefix + n
        sequence.reserve(batch * t * d)
        let x = sequence.pointer
        let positions = patchPositions(grid: grid)
        let table = positionEmbedding.value.pointer
        let prefixPositions: UnsafePointer<Float>? = config.noEmbedClass ? nil : UnsafePointer(table)
        for b in 0..<batch {
            let image = x + b * t * d
            image.update(from: classToken.value.pointer, count: d)
            if let registerTokens { (image + d).update(from: registerTokens.value.pointer, count: (prefix - 1) * d) }
            if let prefixPositions { for i in 0..<(prefix * d) { image[i] += prefixPositions[i] } }
            for i in 0..<(n * d) { image[prefix * d + i] = embedded[b * n * d + i] + positions[i] }
        }
        return x
    }

    /// The patch part of `pos_embed`, resampled when the input grid is not the stored one.
    func patchPositions(grid: Int) -> [Float] {
        if let cached = resampledPositions[grid] { return cached }
        let stored = config.storedGrid, skip = config.noEmbedClass ? 0 : config.prefixTokens
        let table = PositionGrid.resample(positionEmbedding.value.pointer + skip * config.width, width: config.width, from: stored, to: grid)
        resampledPositions[grid] = table
        return table
    }

    /// Forgets resampled positions (after the weights change).
    public func weightsChanged() {
        resampledPositions = [:]
        if precision == .bf16 { for layer in [patchEmbed] + blocks.flatMap(\.linears) { layer.refreshLowPrecisionWeights() } }
    }

    private func pool(_ tokens: UnsafePointer<Float>, batch: Int, tokens t: Int) -> [Float] {
        let d = config.width, f = featureWidth, prefix = config.prefixTokens
        var out = [Float](repeating: 0, count: batch * f)
        for b in 0..<batch {
            let image = tokens + b * t * d
            var mean = [Double](repeating: 0, count: d)
            if config.pooling != .token {
                for r in prefix..<t { for j in 0..<d { mean[j] += Double(image[r * d + j]) } }
                for j in 0..<d { mean[j] /= Double(t - prefix) }
            }
            switch config.pooling {
            case .token: for j in 0..<d { out[b * f + j] = image[j] }
            case .tokenMean: for j in 0..<d { out[b * f + j] = image[j]; out[b * f + d + j] = Float(mean[j]) }
            case .average: for j in 0..<d { out[b * f + j] = Float(mean[j]) }
            }
        }
        return out
    }
}
