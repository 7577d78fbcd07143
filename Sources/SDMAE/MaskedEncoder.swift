import Foundation
import NN
import ViT

/// The encoder SD-MAE trains: the visible patches of each image in, the normalised latents of
/// those tokens out; backward takes their gradient. Either a new network (`ScratchEncoder`, MAE's
/// fixed sin-cos positions) or a published ViT being adapted to a lab's slides.
public protocol MaskedEncoder: AnyObject {
    var width: Int { get }
    /// In the order of a state dict; the optimiser's moments follow it.
    var parameters: [Parameter] { get }
    /// The products that may run in bf16.
    var linears: [Linear] { get }
    var attentions: [Attention] { get }
    /// Fixed tables written beside the parameters.
    var buffers: [(name: String, shape: [Int], values: [Float])] { get }
    /// `patches` [B·n, 3·p·p] of pixels in [0, 1] (the encoder may rescale them in place), the
    /// patches listed in `tokens` → [B·n, width].
    func encode(_ patches: UnsafeMutablePointer<Float>, batch: Int, tokens: [[Int]], keepsForBackward: Bool) throws -> UnsafePointer<Float>
    /// The gradient [B·n, width] of the last `encode`'s output.
    func backward(_ dLatent: UnsafeMutablePointer<Float>) throws
}

/// MAE's encoder, new: patch embedding plus fixed sin-cos positions, the blocks, the final norm.
public final class ScratchEncoder: MaskedEncoder {
    let patchEmbed: Linear
    let positions: [Float]
    let blocks: [TransformerBlock]
    let norm: LayerNorm
    public let width: Int
    private let input = Buffer(count: 0)

    init(config: SDMAEConfig) {
        let d = config.width, p = config.patchSize
        width = d
        patchEmbed = Linear("patch_embed.proj", inputs: 3 * p * p, outputs: d, weightShape: [d, 3, p, p])
        patchEmbed.computesInputGradient = false
        positions = sinCosPositionTable(width: d, grid: config.grid)
        blocks = (0..<config.depth).map { TransformerBlock("blocks.\($0)", width: d, heads: config.heads) }
        norm = LayerNorm("norm", width: d)
    }

    public var parameters: [Parameter] { patchEmbed.parameters + blocks.flatMap(\.parameters) + norm.parameters }
    public var linears: [Linear] { [patchEmbed] + blocks.flatMap(\.linears) }
    public var attentions: [Attention] { blocks.map(\.attention) }
    public var buffers: [(name: String, shape: [Int], values: [Float])] {
        [(name: "pos_embed", shape: [1, positions.count / width, width], values: positions)]
    }

    public func encode(_ patches: UnsafeMutablePointer<Float>, batch: Int, tokens: [[Int]], keepsForBackward: Bool) throws -> UnsafePointer<Float> {
        let n = tokens[0].count, d = width
        let embedded = try patchEmbed.forward(patches, rows: batch * n)                 // [B·n, d]
        input.reserve(batch * n * d)
        for b in 0..<batch {
            for (i, token) in tokens[b].enumerated() {
                let row = (b * n + i) * d
                for j in 0..<d { input[row + j] = embedded[row + j] + positions[token * d + j] }
            }
        }
        var x = UnsafePointer(input.pointer)                                            // [B·n, d]
        for block in blocks { x = try UnsafePointer(block.forward(x, batch: batch, tokens: n, keepsForBackward: keepsForBackward)) }
        return UnsafePointer(norm.forward(x, rows: batch * n))                          // [B·n, d]
    }

    public func backward(_ dLatent: UnsafeMutablePointer<Float>) throws {
        var dx = norm.backward(dLatent)                                                  // [B·n, d]
        for block in blocks.reversed() { dx = try block.backward(dx) }
        try patchEmbed.backward(dx)
    }
}

/// A published encoder as SD-MAE's: its own prefix tokens, positions and normalisation.
final class PublishedEncoder: MaskedEncoder {
    let vit: VisionTransformer
    let grid: Int
    private let mean: [Float]
    private let inverseStd: [Float]

    init(_ vit: VisionTransformer) {
        self.vit = vit
        grid = vit.config.inputGrid
        mean = vit.config.transform.mean.map(Float.init)
        inverseStd = vit.config.transform.std.map { Float(1 / $0) }
    }

    var width: Int { vit.config.width }
    var parameters: [Parameter] { vit.parameters }
    var linears: [Linear] { vit.linears }
    var attentions: [Attention] { vit.attentions }
    var buffers: [(name: String, shape: [Int], values: [Float])] { [] }

    /// The transform's normalisation, (x − mean) / std per channel, then the ViT.
    func encode(_ patches: UnsafeMutablePointer<Float>, batch: Int, tokens: [[Int]], keepsForBackward: Bool) throws -> UnsafePointer<Float> {
        let plane = vit.config.patchSize * vit.config.patchSize, rows = batch * tokens[0].count
        Parallel.forChunks(rows, grain: 64) { range in
            for r in range {
                for c in 0..<3 {
                    let values = patches + (r * 3 + c) * plane
                    for i in 0..<plane { values[i] = (values[i] - self.mean[c]) * self.inverseStd[c] }
                }
            }
        }
        return try vit.encodeVisible(patches, batch: batch, tokens: tokens, grid: grid)
    }

    func backward(_ dLatent: UnsafeMutablePointer<Float>) throws {
        try vit.backwardVisible(dLatent, grid: grid)
    }
}
