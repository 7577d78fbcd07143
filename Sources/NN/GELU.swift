import Foundation

/// Exact GELU, x·Φ(x) with Φ the normal CDF through erf (PyTorch's default, not the tanh form).
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
            for i in range {
                let c = 0.5 * (1 + erff(x[i] * Float(0.5).squareRoot()))
                phi[i] = c
                y[i] = x[i] * c
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
            for i in range {
                let v = x[i]
                dx[i] = dy[i] * (phi[i] + v * inverseSqrt2Pi * expf(-0.5 * v * v))
            }
        }
        return dx
    }
}
