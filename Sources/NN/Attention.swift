import CDNNL
import CKernels
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

    /// Inference only, as `Linear.precision`: bf16 runs both products per head on bfloat16
    /// operands (scores, softmax and accumulation in fp32).
    public var precision = Precision.fp32
    private let qkvBF16 = BF16Buffer()
    /// Per thread: the probabilities of one head as bfloat16, and the two products for `tokens`.
    private let probabilitiesBF16 = BF16Buffer()
    private var products: [(scores: UnsafeMutablePointer<cdnnl_matmul>, values: UnsafeMutablePointer<cdnnl_matmul>)] = []
    private var productTokens = 0

    public init(width: Int, heads: Int) {
        precondition(width % heads == 0, "width \(width) is not divisible by \(heads) heads")
        self.width = width
        self.heads = heads
        headWidth = width / heads
        scale = 1 / Float(headWidth).squareRoot()
    }

    deinit {
        for pair in products { cdnnl_matmul_destroy(pair.scores); cdnnl_matmul_destroy(pair.values) }
    }

    @discardableResult
    public func forward(_ qkv: UnsafePointer<Float>, batch: Int, tokens: Int) -> UnsafeMutablePointer<Float> {
        self.qkv = qkv
        self.batch = batch
        self.tokens = tokens
        let n = tokens, ld = 3 * width
        output.reserve(batch * n * width)
        probabilities.reserve(batch * heads * n * n)
        if precision == .bf16, batch > 0, n > 0 {
            forwardBF16(qkv, batch: batch, tokens: n)
            return output.pointer
        }
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

    private func forwardBF16(_ qkv: UnsafePointer<Float>, batch: Int, tokens n: Int) {
        _ = BF16Product.singleThreaded
        let ld = 3 * width, threads = Parallel.threads
        let converted = qkvBF16.reserve(batch * n * ld), scratch = probabilitiesBF16.reserve(threads * n * n)
        if productTokens != n {
            for pair in products { cdnnl_matmul_destroy(pair.scores); cdnnl_matmul_destroy(pair.values) }
            let d = Int64(self.headWidth), tokens = Int64(n), stride = Int64(ld), rowStride = Int64(self.width)
            products = (0..<threads).map { _ in
                // S[n,n] = Q[n,d]·Kᵀ (K read transposed in place), O[n,d] = P[n,n]·V[n,d] into the output rows.
                guard let scores = cdnnl_matmul_create_strided(tokens, d, tokens, stride, 1, 1, stride, tokens, 1),
                      let values = cdnnl_matmul_create_strided(tokens, tokens, d, tokens, 1, stride, 1, rowStride, 1) else {
                    preconditionFailure("oneDNN refused the attention products of \(n) tokens × \(d)")
                }
                return (scores, values)
            }
            productTokens = n
        }
        convertToBF16(qkv, converted, count: batch * n * ld)
        let (heads, headWidth, width, scale, out, probabilities) = (heads, headWidth, width, scale, output.pointer, probabilities.pointer)
        let work = UncheckedProducts(products)
        Parallel.forChunksIndexed(batch * heads) { thread, pairs in
            let (scores, values) = work.values[thread]
            let p16 = scratch + thread * n * n
            for pair in pairs {
                let b = pair / heads, h = pair % heads
                let q = converted + b * n * ld + h * headWidth, k = q + width, v = q + 2 * width
                let a = probabilities + pair * n * n
                guard cdnnl_matmul_run(scores, q, k, nil, a) == 1 else { preconditionFailure("oneDNN attention scores failed") }
                for i in 0..<(n * n) { a[i] *= scale }
                softmaxRowsInPlace(a, rows: n, count: n)
                ck_to_bf16(a, p16, n * n)
                guard cdnnl_matmul_run(values, p16, v, nil, out + b * n * width + h * headWidth) == 1 else {
                    preconditionFailure("oneDNN attention values failed")
                }
            }
        }
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

/// Each thread uses only its own pair of products inside the parallel region.
private struct UncheckedProducts: @unchecked Sendable {
    let values: [(scores: UnsafeMutablePointer<cdnnl_matmul>, values: UnsafeMutablePointer<cdnnl_matmul>)]
    init(_ values: [(scores: UnsafeMutablePointer<cdnnl_matmul>, values: UnsafeMutablePointer<cdnnl_matmul>)]) { self.values = values }
}
