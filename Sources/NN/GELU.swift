import Foundation

/// Exact GELU, x·Φ(x) with Φ the normal CDF (PyTorch's default, not the tanh form), Φ to
/// within 1e-7 through `FastMath.normalCDF`.
public final class GELU {
    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    /// Φ(x) from the forward pass: backward then needs only the density, not erf again.
    private let cdf = Buffer(count: 0)
    private var input: UnsafePointer<Float>?
    private var count = 0

    public init() {}

    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, count: Int) -> UnsafeMutablePointer<Float> {
        self.count = count
        input = x
        output.reserve(count)
        cdf.reserve(count)
        let (y, phi) = (output.pointer, cdf.pointer)
        Parallel.forChunks(count, grain: 8192) { range in
            let start = range.lowerBound
            mapSIMD8(x + start, phi + start, count: range.count) { FastMath.normalCDF($0) }
            for i in range { y[i] = x[i] * phi[i] }
        }
        return y
    }

    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        guard let x = input else { preconditionFailure("GELU.backward before forward") }
        inputGradient.reserve(count)
        let (dx, phi) = (inputGradient.pointer, cdf.pointer)
        let inverseSqrt2Pi = 1 / (2 * Float.pi).squareRoot()
        Parallel.forChunks(count, grain: 8192) { range in
            let start = range.lowerBound
            // dx temporarily holds the density φ(x) = e^{−x²/2}/√(2π).
            mapSIMD8(x + start, dx + start, count: range.count) { v in FastMath.exp(-0.5 * v * v) * inverseSqrt2Pi }
            for i in range { dx[i] = dy[i] * (phi[i] + x[i] * dx[i]) }
        }
        return dx
    }
}
