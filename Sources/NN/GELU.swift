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
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let v = load8(x + i)
                let c = FastMath.normalCDF(v)
                store8(c, phi + i)
                store8(v * c, y + i)
                i += 8
            }
            while i < range.upperBound {
                phi[i] = 0.5 * (1 + erff(x[i] * Float(0.5).squareRoot()))
                y[i] = x[i] * phi[i]
                i += 1
            }
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
            // GELU'(x) = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π).
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let v = load8(x + i)
                let density = FastMath.exp(-0.5 * v * v) * inverseSqrt2Pi
                store8(load8(dy + i) * (load8(phi + i) + v * density), dx + i)
                i += 8
            }
            while i < range.upperBound {
                dx[i] = dy[i] * (phi[i] + x[i] * inverseSqrt2Pi * expf(-0.5 * x[i] * x[i]))
                i += 1
            }
        }
        return dx
    }
}
