/// Rows scaled to unit L2 norm: y = x / max(‖x‖, 1e-12) (PyTorch's F.normalize).
public final class L2Normalize {
    public let width: Int
    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    private let norms = Buffer(count: 0)
    private var rows = 0

    public init(width: Int) { self.width = width }

    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, rows: Int) -> UnsafeMutablePointer<Float> {
        self.rows = rows
        output.reserve(rows * width)
        norms.reserve(rows)
        for r in 0..<rows {
            let row = x + r * width, y = output.pointer + r * width
            var sum: Float = 0
            for i in 0..<width { sum += row[i] * row[i] }
            let norm = max(sum.squareRoot(), 1e-12)
            norms[r] = norm
            for i in 0..<width { y[i] = row[i] / norm }
        }
        return output.pointer
    }

    /// dx = (dy − y (y·dy)) / ‖x‖.
    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        inputGradient.reserve(rows * width)
        for r in 0..<rows {
            let y = output.pointer + r * width, g = dy + r * width, dx = inputGradient.pointer + r * width
            var dot: Float = 0
            for i in 0..<width { dot += y[i] * g[i] }
            let inverse = 1 / norms[r]
            for i in 0..<width { dx[i] = (g[i] - y[i] * dot) * inverse }
        }
        return inputGradient.pointer
    }
}

/// Weight-normalised linear map without bias, gain fixed at 1: W = V / ‖V‖ row by row
/// (DINO's last layer, `last_layer.weight_v`).
public final class WeightNormLinear {
    public let direction: Parameter
    public let inputs: Int
    public let outputs: Int
    private let rowNorms = Buffer(count: 0)
    private let linear: Linear

    public init(_ name: String, inputs: Int, outputs: Int) {
        self.inputs = inputs
        self.outputs = outputs
        direction = Parameter(name + ".weight_v", shape: [outputs, inputs])
        linear = Linear(name + ".normalised", inputs: inputs, outputs: outputs, bias: false)
    }

    public var parameters: [Parameter] { [direction] }
    public var output: Buffer { linear.output }

    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, rows: Int) throws -> UnsafeMutablePointer<Float> {
        // The normalised weight lives in the inner Linear's parameter, rebuilt every step from V.
        rowNorms.reserve(outputs)
        let v = direction.value.pointer, w = linear.weight.value.pointer
        for k in 0..<outputs {
            var sum: Float = 0
            for i in 0..<inputs { sum += v[k * inputs + i] * v[k * inputs + i] }
            let norm = max(sum.squareRoot(), 1e-12)
            rowNorms[k] = norm
            for i in 0..<inputs { w[k * inputs + i] = v[k * inputs + i] / norm }
        }
        return try linear.forward(x, rows: rows)
    }

    /// dV = (dW − W (W·dW)) / ‖V‖ per row.
    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) throws -> UnsafeMutablePointer<Float> {
        linear.weight.grad.zero()
        let dx = try linear.backward(dy)
        let w = linear.weight.value.pointer, dw = linear.weight.grad.pointer, dv = direction.grad.pointer
        for k in 0..<outputs {
            var dot: Float = 0
            for i in 0..<inputs { dot += w[k * inputs + i] * dw[k * inputs + i] }
            let inverse = 1 / rowNorms[k]
            for i in 0..<inputs { dv[k * inputs + i] += (dw[k * inputs + i] - w[k * inputs + i] * dot) * inverse }
        }
        return dx
    }
}
