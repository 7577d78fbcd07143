import CKernels
import Foundation

/// Per-row normalisation with learned scale and shift (biased variance, as PyTorch).
public final class LayerNorm {
    public let weight: Parameter
    public let bias: Parameter
    public let width: Int
    public let epsilon: Float

    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    private let mean = Buffer(count: 0)
    private let inverseStd = Buffer(count: 0)
    private let partials = Buffer(count: 0)
    private var input: UnsafePointer<Float>?
    private var rows = 0

    public init(_ name: String, width: Int, epsilon: Float = 1e-6) {
        self.width = width
        self.epsilon = epsilon
        weight = Parameter(name + ".weight", shape: [width], decay: false)
        bias = Parameter(name + ".bias", shape: [width], decay: false)
        for i in 0..<width { weight.value[i] = 1 }
    }

    public var parameters: [Parameter] { [weight, bias] }

    public func shareActivations(with other: LayerNorm) {
        for (mine, theirs) in [(output, other.output), (inputGradient, other.inputGradient), (mean, other.mean),
                               (inverseStd, other.inverseStd), (partials, other.partials)] { mine.share(theirs) }
    }

    /// `bf16`, when given, also receives the output as bfloat16 (a bf16 product's input),
    /// each row rounded while it is still in cache.
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, rows: Int, bf16: UnsafeMutablePointer<UInt16>? = nil) -> UnsafeMutablePointer<Float> {
        self.rows = rows
        input = x
        output.reserve(rows * width)
        mean.reserve(rows)
        inverseStd.reserve(rows)
        let (w, b, y, width, epsilon) = (weight.value.pointer, bias.value.pointer, output.pointer, width, epsilon)
        let (mean, inverseStd) = (mean.pointer, inverseStd.pointer)
        Parallel.forChunks(rows, grain: 16) { range in
            // Eight rows at a time, one per SIMD lane: each lane sums its row in the scalar
            // order (the same bits), while eight independent sums hide the adds' latency.
            var r = range.lowerBound
            while r < range.upperBound {
                let lanes = min(8, range.upperBound - r)
                let base = x + r * width
                // A short tail repeats its last row in the spare lanes.
                func row(_ lane: Int) -> UnsafePointer<Float> { base + min(lane, lanes - 1) * width }
                let (p0, p1, p2, p3, p4, p5, p6, p7) = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7))
                @inline(__always) func column(_ i: Int) -> SIMD8<Float> {
                    SIMD8(p0[i], p1[i], p2[i], p3[i], p4[i], p5[i], p6[i], p7[i])
                }
                var sum = SIMD8<Float>()
                for i in 0..<width { sum += column(i) }
                let m = sum / Float(width)
                var variance = SIMD8<Float>()
                for i in 0..<width { let d = column(i) - m; variance += d * d }
                let s = 1 / (variance / Float(width) + epsilon).squareRoot()
                for lane in 0..<lanes {
                    let row = base + lane * width, out = y + (r + lane) * width
                    let (m, s) = (m[lane], s[lane])
                    mean[r + lane] = m
                    inverseStd[r + lane] = s
                    for i in 0..<width { out[i] = (row[i] - m) * s * w[i] + b[i] }
                    if let bf16 { ck_to_bf16(out, bf16 + (r + lane) * width, width) }
                }
                r += lanes
            }
        }
        return y
    }

    static let reductionBlocks = 16

    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        guard let x = input else { preconditionFailure("LayerNorm.backward before forward") }
        inputGradient.reserve(rows * width)
        // dγ, dβ are summed per block of rows, then the blocks in order: a fixed number of blocks,
        // not one per thread, so the sums (and a run's every bit) do not depend on the core count.
        let blocks = min(rows, Self.reductionBlocks)
        partials.reserve(2 * blocks * width)
        partials.zero()
        let (w, width, rows, partials, dxBase) = (weight.value.pointer, width, rows, partials.pointer, inputGradient.pointer)
        let (mean, inverseStd) = (mean.pointer, inverseStd.pointer)
        Parallel.forChunks(blocks) { chunk in for block in chunk {
            let dw = partials + 2 * block * width, db = dw + width
            for r in (rows * block / blocks)..<(rows * (block + 1) / blocks) {
                let row = x + r * width, g = dy + r * width, dx = dxBase + r * width
                let m = mean[r], s = inverseStd[r]
                var meanG: Float = 0, meanGX: Float = 0
                for i in 0..<width {
                    let xhat = (row[i] - m) * s
                    let gi = g[i] * w[i]
                    meanG += gi
                    meanGX += gi * xhat
                    dw[i] += g[i] * xhat
                    db[i] += g[i]
                }
                meanG /= Float(width)
                meanGX /= Float(width)
                for i in 0..<width {
                    let xhat = (row[i] - m) * s
                    dx[i] = (g[i] * w[i] - meanG - xhat * meanGX) * s
                }
            }
        } }
        let dw = weight.grad.pointer, db = bias.grad.pointer
        for block in 0..<blocks {
            for i in 0..<width {
                dw[i] += partials[2 * block * width + i]
                db[i] += partials[(2 * block + 1) * width + i]
            }
        }
        return inputGradient.pointer
    }
}
