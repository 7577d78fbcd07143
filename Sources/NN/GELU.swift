import CKernels
import Foundation

/// Exact GELU, x·Φ(x) with Φ the normal CDF (PyTorch's default, not the tanh form), Φ to
/// within 1e-7 (Abramowitz & Stegun 7.1.26, in the C kernels).
public final class GELU {
    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    /// Φ(x) from the forward pass: backward then needs only the density, not erf again.
    private let cdf = Buffer(count: 0)
    private var input: UnsafePointer<Float>?
    private var count = 0
    private var keptForBackward = false

    public init() {}

    public func shareActivations(with other: GELU) {
        for (mine, theirs) in [(output, other.output), (inputGradient, other.inputGradient), (cdf, other.cdf)] { mine.share(theirs) }
    }

    /// `keepsForBackward` false (inference) skips storing Φ(x): a full-size write saved.
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, count: Int, keepsForBackward: Bool = true) -> UnsafeMutablePointer<Float> {
        self.count = count
        input = x
        output.reserve(count)
        let y = output.pointer, phi = keepCDF(keepsForBackward)
        Parallel.forChunks(count, grain: 8192) { range in
            ck_gelu_forward(x + range.lowerBound, y + range.lowerBound, phi.map { $0 + range.lowerBound }, range.count)
        }
        return y
    }

    /// The forward with y written as bfloat16 into `y16` (a bf16 product's input buffer):
    /// backward needs only x and Φ(x), so no fp32 copy of y is made.
    public func forward(_ x: UnsafePointer<Float>, count: Int, bf16 y16: UnsafeMutablePointer<UInt16>, keepsForBackward: Bool = true) {
        self.count = count
        input = x
        let phi = keepCDF(keepsForBackward)
        Parallel.forChunks(count, grain: 8192) { range in
            ck_gelu_forward_bf16(x + range.lowerBound, y16 + range.lowerBound, phi.map { $0 + range.lowerBound }, range.count)
        }
    }

    private func keepCDF(_ keeps: Bool) -> UnsafeMutablePointer<Float>? {
        keptForBackward = keeps
        guard keeps else { return nil }
        cdf.reserve(count)
        return cdf.pointer
    }

    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        guard let x = input, keptForBackward else { preconditionFailure("GELU.backward without a forward that kept Φ(x)") }
        inputGradient.reserve(count)
        let (dx, phi) = (inputGradient.pointer, cdf.pointer)
        Parallel.forChunks(count, grain: 8192) { range in
            let o = range.lowerBound
            ck_gelu_backward(x + o, phi + o, dy + o, dx + o, range.count)
        }
        return dx
    }
}
