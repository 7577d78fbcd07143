import Foundation

/// Exact GELU, x·Φ(x) with Φ the normal CDF through erf (PyTorch's default, not the tanh form).
public final class GELU {
    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    private var input: UnsafePointer<Float>?
    private var count = 0

    public init() {}

    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, count: Int) -> UnsafeMutablePointer<Float> {
        self.count = count
        input = x
        output.reserve(count)
        let y = output.pointer
        for i in 0..<count { y[i] = 0.5 * x[i] * (1 + erff(x[i] * Float(0.5).squareRoot())) }
        return y
    }

    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        guard let x = input else { preconditionFailure("GELU.backward before forward") }
        inputGradient.reserve(count)
        let dx = inputGradient.pointer
        let inverseSqrt2Pi = 1 / (2 * Float.pi).squareRoot()
        for i in 0..<count {
            let v = x[i]
            let cdf = 0.5 * (1 + erff(v * Float(0.5).squareRoot()))
            let pdf = inverseSqrt2Pi * expf(-0.5 * v * v)
            dx[i] = dy[i] * (cdf + v * pdf)
        }
        return dx
    }
}
