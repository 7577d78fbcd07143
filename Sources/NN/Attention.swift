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

    /// As `Linear.precision`: bf16 runs the two products per head forward and the four backward
    /// on bfloat16 operands; scores, softmax and its backward, and accumulation stay fp32.
    public var precision = Precision.fp32
    /// q|k|v rounded once in forward, read again by backward.
    private let qkvBF16 = BF16Buffer()
    /// Per thread: one head's probabilities, then its score gradient, as bfloat16.
    private let probabilitiesBF16 = BF16Buffer()
    private let outputGradientBF16 = BF16Buffer()
    private var products: [HeadProducts] = []
    private var productTokens = 0
    /// Whether the last forward rounded q|k|v to bfloat16, which the bf16 backward reads.
    private var forwardRoundedInputs = false

    public init(width: Int, heads: Int) {
        precondition(width % heads == 0, "width \(width) is not divisible by \(heads) heads")
        self.width = width
        self.heads = heads
        headWidth = width / heads
        scale = 1 / Float(headWidth).squareRoot()
    }

    public func shareActivations(with other: Attention) {
        for (mine, theirs) in [(output, other.output), (inputGradient, other.inputGradient), (probabilities, other.probabilities),
                               (scratch, other.scratch)] { mine.share(theirs) }
        for (mine, theirs) in [(qkvBF16, other.qkvBF16), (probabilitiesBF16, other.probabilitiesBF16),
                               (outputGradientBF16, other.outputGradientBF16)] { mine.share(theirs) }
    }

    @discardableResult
    public func forward(_ qkv: UnsafePointer<Float>, batch: Int, tokens: Int) throws -> UnsafeMutablePointer<Float> {
        self.qkv = qkv
        self.batch = batch
        self.tokens = tokens
        let n = tokens, ld = 3 * width
        output.reserve(batch * n * width)
        probabilities.reserve(batch * heads * n * n)
        forwardRoundedInputs = precision == .bf16 && batch > 0 && n > 0
        if forwardRoundedInputs {
            try forwardBF16(qkv, batch: batch, tokens: n)
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

    /// The output of each sequence's first query (the class token) alone, [batch, width]: what
    /// a last block reads when only the class token is pooled. Keys and values are every token's.
    /// Inference only; fp32 (two matrix-vector products per head, a small share of the block).
    public func forwardFirstQuery(_ qkv: UnsafePointer<Float>, batch: Int, tokens n: Int) -> UnsafeMutablePointer<Float> {
        let ld = 3 * width
        output.reserve(batch * width)
        scratch.reserve(Parallel.threads * n)
        let (heads, headWidth, width, scale, out, scores) = (heads, headWidth, width, scale, output.pointer, scratch.pointer)
        Parallel.forChunksIndexed(batch * heads) { thread, pairs in
            let p = scores + thread * n
            for pair in pairs {
                let b = pair / heads, h = pair % heads
                let q = qkv + b * n * ld + h * headWidth, k = q + width, v = q + 2 * width
                gemv(m: n, n: headWidth, alpha: scale, k, lda: ld, q, p)                           // [n] = K·q
                softmaxInPlace(p, count: n)
                gemv(transpose: true, m: n, n: headWidth, v, lda: ld, p, out + b * width + h * headWidth)  // [hw] = Vᵀ·p
            }
        }
        return out
    }

    private func forwardBF16(_ qkv: UnsafePointer<Float>, batch: Int, tokens n: Int) throws {
        _ = BF16Product.singleThreaded
        let ld = 3 * width, threads = Parallel.threads
        let converted = qkvBF16.reserve(batch * n * ld), scratch = probabilitiesBF16.reserve(threads * n * n)
        if productTokens != n || products.count != threads {
            products = try (0..<threads).map { _ in try HeadProducts(tokens: n, headWidth: self.headWidth, width: self.width) }
            productTokens = n
        }
        convertToBF16(qkv, converted, count: batch * n * ld)
        let (heads, headWidth, width, scale, out, probabilities) = (heads, headWidth, width, scale, output.pointer, probabilities.pointer)
        let work = UncheckedProducts(products)
        let succeeded = Parallel.forChunksIndexedSucceeding(batch * heads) { thread, pairs in
            let products = work.values[thread]
            let p16 = scratch + thread * n * n
            for pair in pairs {
                let b = pair / heads, h = pair % heads
                let q = UnsafePointer(converted) + b * n * ld + h * headWidth, k = q + width, v = q + 2 * width
                let a = probabilities + pair * n * n
                guard products.run(products.scores, q, k, into: a) else { return false }
                for i in 0..<(n * n) { a[i] *= scale }
                softmaxRowsInPlace(a, rows: n, count: n)
                ck_to_bf16(a, p16, n * n)
                guard products.run(products.values, p16, v, into: out + b * n * width + h * headWidth) else { return false }
            }
            return true
        }
        guard succeeded else { throw LibraryRefusal(what: "to run an attention product of \(n) tokens × \(headWidth)") }
    }

    /// Returns d(qkv) [batch·tokens, 3·width].
    @discardableResult
    public func backward(_ dOut: UnsafePointer<Float>) throws -> UnsafeMutablePointer<Float> {
        guard let qkv else { preconditionFailure("Attention.backward before forward") }
        let n = tokens, ld = 3 * width
        inputGradient.reserve(batch * n * ld)
        scratch.reserve(Parallel.threads * n * n)
        if precision == .bf16, forwardRoundedInputs {
            try backwardBF16(dOut, tokens: n)
            return inputGradient.pointer
        }
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
                softmaxBackwardRows(a, dA, tokens: n, scale: 1)
                gemm(m: n, n: headWidth, k: n, alpha: scale, dA, lda: n, k, ldb: ld, dq, ldc: ld)
                gemm(transposeA: true, m: n, n: headWidth, k: n, alpha: scale, dA, lda: n, q, ldb: ld, dk, ldc: ld)
            }
        }
        return inputGradient.pointer
    }
}

extension Attention {
    /// The four products of attention's backward on bfloat16 operands, as the fp32 path does them:
    /// dP = dO·Vᵀ, dV = Pᵀ·dO, then (after the softmax backward in fp32, scaled) dQ = dS·K and
    /// dK = dSᵀ·Q, written straight into the q|k|v gradient rows.
    private func backwardBF16(_ dOut: UnsafePointer<Float>, tokens n: Int) throws {
        let ld = 3 * width, threads = Parallel.threads
        let dOut16 = outputGradientBF16.reserve(batch * n * width), p16All = probabilitiesBF16.reserve(threads * n * n)
        convertToBF16(dOut, dOut16, count: batch * n * width)
        let (heads, headWidth, width, scale) = (heads, headWidth, width, scale)
        let (dqkv, probabilities, scratch, qkv16) = (inputGradient.pointer, probabilities.pointer, scratch.pointer, UnsafePointer(qkvBF16.pointer))
        let work = UncheckedProducts(products)
        let succeeded = Parallel.forChunksIndexedSucceeding(batch * heads) { thread, pairs in
            let products = work.values[thread]
            let dA = scratch + thread * n * n, p16 = p16All + thread * n * n
            for pair in pairs {
                let b = pair / heads, h = pair % heads
                let q = qkv16 + b * n * ld + h * headWidth, k = q + width, v = q + 2 * width
                let dq = dqkv + b * n * ld + h * headWidth, dk = dq + width, dv = dq + 2 * width
                let a = probabilities + pair * n * n
                let dO = UnsafePointer(dOut16) + b * n * width + h * headWidth
                ck_to_bf16(a, p16, n * n)
                guard products.run(products.probabilityGradient, dO, v, into: dA),
                      products.run(products.valueGradient, p16, dO, into: dv) else { return false }
                softmaxBackwardRows(a, dA, tokens: n, scale: scale)
                ck_to_bf16(dA, p16, n * n)
                guard products.run(products.queryGradient, p16, k, into: dq),
                      products.run(products.keyGradient, p16, q, into: dk) else { return false }
            }
            return true
        }
        guard succeeded else { throw LibraryRefusal(what: "to run an attention gradient of \(n) tokens × \(headWidth)") }
    }
}

/// The softmax backward in place, row by row: dS = scale · A ⊙ (dA − Σ_j dA·A). The bf16 path
/// folds the score scale in here, the fp32 path into its products (scale 1 leaves the bits alone).
private func softmaxBackwardRows(_ a: UnsafePointer<Float>, _ dA: UnsafeMutablePointer<Float>, tokens n: Int, scale: Float) {
    for row in 0..<n {
        let ar = a + row * n, dr = dA + row * n
        var dot: Float = 0
        for j in 0..<n { dot += ar[j] * dr[j] }
        for j in 0..<n { dr[j] = scale * ar[j] * (dr[j] - dot) }
    }
}

/// One thread's oneDNN products for a head of `tokens` × `headWidth` inside packed q|k|v rows
/// (row stride 3·width; the output and its gradient have row stride width). Created once per
/// token count: creating a primitive costs far more than running it.
private final class HeadProducts {
    let scores, values, probabilityGradient, valueGradient, queryGradient, keyGradient: UnsafeMutablePointer<cdnnl_matmul>

    init(tokens: Int, headWidth: Int, width: Int) throws {
        let n = Int64(tokens), d = Int64(headWidth), qkv = Int64(3 * width), rows = Int64(width)
        var made: [UnsafeMutablePointer<cdnnl_matmul>] = []
        func make(_ m: Int64, _ k: Int64, _ columns: Int64, a: (Int64, Int64), b: (Int64, Int64), c: (Int64, Int64)) throws -> UnsafeMutablePointer<cdnnl_matmul> {
            guard let product = cdnnl_matmul_create_strided(m, k, columns, a.0, a.1, b.0, b.1, c.0, c.1) else {
                for product in made { cdnnl_matmul_destroy(product) }
                throw LibraryRefusal(what: "an attention product of \(tokens) tokens × \(headWidth)")
            }
            made.append(product)
            return product
        }
        scores = try make(n, d, n, a: (qkv, 1), b: (1, qkv), c: (n, 1))                  // S = Q·Kᵀ, K read transposed
        values = try make(n, n, d, a: (n, 1), b: (qkv, 1), c: (rows, 1))                 // O = P·V into the output rows
        probabilityGradient = try make(n, d, n, a: (rows, 1), b: (1, qkv), c: (n, 1))    // dP = dO·Vᵀ
        valueGradient = try make(n, n, d, a: (1, n), b: (rows, 1), c: (qkv, 1))          // dV = Pᵀ·dO
        queryGradient = try make(n, n, d, a: (n, 1), b: (qkv, 1), c: (qkv, 1))           // dQ = dS·K
        keyGradient = try make(n, n, d, a: (1, n), b: (qkv, 1), c: (qkv, 1))             // dK = dSᵀ·Q
    }

    deinit {
        for product in [scores, values, probabilityGradient, valueGradient, queryGradient, keyGradient] { cdnnl_matmul_destroy(product) }
    }

    /// Whether oneDNN ran it; inside the parallel region a failure is collected, not thrown.
    func run(_ product: UnsafeMutablePointer<cdnnl_matmul>, _ a: UnsafePointer<UInt16>, _ b: UnsafePointer<UInt16>,
             into c: UnsafeMutablePointer<Float>) -> Bool {
        cdnnl_matmul_run(product, a, b, nil, c) == 1
    }
}

/// Each thread uses only its own products inside the parallel region.
private struct UncheckedProducts: @unchecked Sendable {
    let values: [HeadProducts]
    init(_ values: [HeadProducts]) { self.values = values }
}
