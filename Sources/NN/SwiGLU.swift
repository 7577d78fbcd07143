import Foundation

/// timm's packed SwiGLU gate (`mlp_layer: swiglu_packed`): the first layer's output [rows, 2h]
/// holds the gate x1 = [:, :h] and the value x2 = [:, h:]; y = SiLU(x1) ⊙ x2 → [rows, h].
public final class SwiGLU {
    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    private var input: UnsafePointer<Float>?
    private var rows = 0
    private var half = 0

    public init() {}

    public func shareActivations(with other: SwiGLU) {
        output.share(other.output)
        inputGradient.share(other.inputGradient)
    }

    /// `width` is the packed input width 2h.
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, rows: Int, width: Int) -> UnsafeMutablePointer<Float> {
        precondition(width % 2 == 0, "a packed SwiGLU input has an even width, not \(width)")
        self.rows = rows
        half = width / 2
        input = x
        output.reserve(rows * half)
        let (y, half) = (output.pointer, half)
        Parallel.forChunks(rows, grain: 4) { range in
            for r in range {
                let gate = x + r * 2 * half, value = gate + half, out = y + r * half
                for j in 0..<half { out[j] = gate[j] / (1 + expf(-gate[j])) * value[j] }
            }
        }
        return y
    }

    /// d gate = dy·x2·σ(x1)(1 + x1(1 − σ(x1))); d value = dy·SiLU(x1).
    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        guard let x = input else { preconditionFailure("SwiGLU.backward before forward") }
        inputGradient.reserve(rows * 2 * half)
        let (dx, half) = (inputGradient.pointer, half)
        Parallel.forChunks(rows, grain: 4) { range in
            for r in range {
                let gate = x + r * 2 * half, value = gate + half, g = dy + r * half
                let dGate = dx + r * 2 * half, dValue = dGate + half
                for j in 0..<half {
                    let s = 1 / (1 + expf(-gate[j]))
                    dGate[j] = g[j] * value[j] * s * (1 + gate[j] * (1 - s))
                    dValue[j] = g[j] * gate[j] * s
                }
            }
        }
        return dx
    }
}
