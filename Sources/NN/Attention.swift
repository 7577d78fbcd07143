import Foundation

/// Multi-head self-attention core on a packed qkv tensor [batch·tokens, 3·width] whose rows hold
/// q | k | v with heads contiguous inside each (timm layout). Output [batch·tokens, width].
/// Per (sequence, head) the products run as strided GEMMs straight on the qkv rows.
public final class Attention {
    public let width: Int
    public let heads: Int
    public let headWidth: Int
    public let scale: Float

    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    /// Softmax probabilities [batch, heads, tokens, tokens], kept for backward.
    private let probabilities = Buffer(count: 0)
    private let scratch = Buffer(count: 0)
    private var qkv: UnsafePointer<Float>?
    private var batch = 0
    private var tokens = 0

    public init(width: Int, heads: Int) {
        precondition(width % heads == 0, "width \(width) is not divisible by \(heads) heads")
        self.width = width
        self.heads = heads
        headWidth = width / heads
        scale = 1 / Float(headWidth).squareRoot()
    }

    @discardableResult
    public func forward(_ qkv: UnsafePointer<Float>, batch: Int, tokens: Int) -> UnsafeMutablePointer<Float> {
        self.qkv = qkv
        self.batch = batch
        self.tokens = tokens
        let n = tokens, ld = 3 * width
        output.reserve(batch * n * width)
        probabilities.reserve(batch * heads * n * n)
        let (heads, headWidth, width, scale, out, probabilities) = (heads, headWidth, width, scale, output.pointer, probabilities.pointer)
        Parallel.forChunks(batch * heads) { pairs in
            for pair in pairs {
                let b = pair / heads, h = pair % heads
                let q = qkv + b * n * ld + h * headWidth, k = q + width, v = q + 2 * width
                let a = probabilities + pair * n * n
                gemm(transposeB: true, m: n, n: n, k: headWidth, alpha: scale, q, lda: ld, k, ldb: ld, a, ldc: n)
                softmaxRowsInPlace(a, rows: n, count: n)
                gemm(m: n, n: headWidth, k: n, a, lda: n, v, ldb: ld, out + b * n * width + h * headWidth, ldc: width)
            }
        }
        return output.pointer
    }

    /// Returns d(qkv) [batch·tokens, 3·width].
    @discardableResult
    public func backward(_ dOut: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        guard let qkv else { preconditionFailure("Attention.backward before forward") }
        let n = tokens, ld = 3 * width
        inputGradient.reserve(batch * n * ld)
        scratch.reserve(Parallel.threads * n * n)
        let (heads, headWidth, width, scale) = (heads, headWidth, width, scale)
        let (dqkv, probabilities, scratch) = (inputGradient.pointer, probabilities.pointer, scratch.pointer)
        Parallel.forChunksIndexed(batch * heads) { chunk, pairs in
            let dA = scratch + chunk * n * n
            for pair in pairs {
                let b = pair / heads, h = pair % heads
                let q = qkv + b * n * ld + h * headWidth, k = q + width, v = q + 2 * width
                let dq = dqkv + b * n * ld + h * headWidth, dk = dq + width, dv = dq + 2 * width
                let a = probabilities + pair * n * n
                let dO = dOut + b * n * width + h * headWidth
                gemm(transposeB: true, m: n, n: n, k: headWidth, dO, lda: width, v, ldb: ld, dA, ldc: n)
                gemm(transposeA: true, m: n, n: headWidth, k: n, a, lda: n, dO, ldb: width, dv, ldc: ld)
                // Softmax backward, row by row: dS = A ⊙ (dA − Σ_j dA·A).
                for row in 0..<n {
                    let ar = a + row * n, dr = dA + row * n
                    var dot: Float = 0
                    for j in 0..<n { dot += ar[j] * dr[j] }
                    for j in 0..<n { dr[j] = ar[j] * (dr[j] - dot) }
                }
                gemm(m: n, n: headWidth, k: n, alpha: scale, dA, lda: n, k, ldb: ld, dq, ldc: ld)
                gemm(transposeA: true, m: n, n: headWidth, k: n, alpha: scale, dA, lda: n, q, ldb: ld, dk, ldc: ld)
            }
        }
        return inputGradient.pointer
    }
}
