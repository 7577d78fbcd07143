/// Per-feature scale of a residual branch (CaiT; timm's `ls1`/`ls2`): y = γ ⊙ x, γ [width].
public final class LayerScale {
    public let gamma: Parameter
    public let width: Int

    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    private var input: UnsafePointer<Float>?
    private var rows = 0

    public init(_ name: String, width: Int, initialValue: Float = 1e-5) {
        self.width = width
        gamma = Parameter(name + ".gamma", shape: [width], decay: false)
        for i in 0..<width { gamma.value[i] = initialValue }
    }

    public var parameters: [Parameter] { [gamma] }

    public func shareActivations(with other: LayerScale) {
        output.share(other.output)
        inputGradient.share(other.inputGradient)
    }

    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, rows: Int) -> UnsafeMutablePointer<Float> {
        self.rows = rows
        input = x
        output.reserve(rows * width)
        let (y, g, width) = (output.pointer, UnsafePointer(gamma.value.pointer), width)
        Parallel.forChunks(rows, grain: 16) { range in
            for r in range { for i in 0..<width { y[r * width + i] = g[i] * x[r * width + i] } }
        }
        return y
    }

    /// dγ is summed over rows in row order (one thread), so its bits do not depend on the core count.
    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        guard let x = input else { preconditionFailure("LayerScale.backward before forward") }
        inputGradient.reserve(rows * width)
        let (dx, g, dg, width) = (inputGradient.pointer, UnsafePointer(gamma.value.pointer), gamma.grad.pointer, width)
        Parallel.forChunks(rows, grain: 16) { range in
            for r in range { for i in 0..<width { dx[r * width + i] = g[i] * dy[r * width + i] } }
        }
        for r in 0..<rows { for i in 0..<width { dg[i] += dy[r * width + i] * x[r * width + i] } }
        return dx
    }
}
