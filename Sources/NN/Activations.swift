import CKernels
import Foundation

/// max(0, x), elementwise.
public final class ReLU {
    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    private var count = 0

    public init() {}

    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, count: Int) -> UnsafeMutablePointer<Float> {
        self.count = count
        output.reserve(count)
        let y = output.pointer
        Parallel.forChunks(count, grain: 16384) { range in
            ck_relu_forward(x + range.lowerBound, y + range.lowerBound, range.count)
        }
        return y
    }

    /// The output doubles as the mask: y > 0 exactly where x > 0.
    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        inputGradient.reserve(count)
        let (y, dx) = (output.pointer, inputGradient.pointer)
        Parallel.forChunks(count, grain: 16384) { range in
            let o = range.lowerBound
            ck_relu_backward(y + o, dy + o, dx + o, range.count)
        }
        return dx
    }
}

/// The gate of gated attention (Ilse et al. 2018): a = tanh(u) ⊙ sigmoid(v), elementwise.
public final class TanhSigmoidGate {
    public let output = Buffer(count: 0)
    public let gradientU = Buffer(count: 0)
    public let gradientV = Buffer(count: 0)
    /// tanh(u) and sigmoid(v) from the forward pass.
    private let tanhU = Buffer(count: 0)
    private let sigmoidV = Buffer(count: 0)
    private var count = 0

    public init() {}

    @discardableResult
    public func forward(_ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>, count: Int) -> UnsafeMutablePointer<Float> {
        self.count = count
        for buffer in [output, tanhU, sigmoidV] { buffer.reserve(count) }
        let (t, g, a) = (tanhU.pointer, sigmoidV.pointer, output.pointer)
        Parallel.forChunks(count, grain: 8192) { range in
            let o = range.lowerBound
            ck_gated_forward(u + o, v + o, t + o, g + o, a + o, range.count)
        }
        return a
    }

    /// Fills `gradientU` and `gradientV` from da.
    public func backward(_ da: UnsafePointer<Float>) {
        gradientU.reserve(count)
        gradientV.reserve(count)
        let (t, g, du, dv) = (tanhU.pointer, sigmoidV.pointer, gradientU.pointer, gradientV.pointer)
        Parallel.forChunks(count, grain: 8192) { range in
            let o = range.lowerBound
            ck_gated_backward(t + o, g + o, da + o, du + o, dv + o, range.count)
        }
    }
}

/// Inverted dropout: in training each value is zeroed with probability `rate` and the rest scaled
/// by 1/(1−rate), so inference is the identity. The caller's generator decides the mask, so a run
/// is repeatable from its seed.
public final class Dropout {
    public let rate: Float
    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    /// 0 or 1/(1−rate) per value; empty after an inference pass.
    private let scale = Buffer(count: 0)
    private var count = 0
    private var active = false

    public init(rate: Float) {
        precondition((0..<1).contains(rate), "dropout rate \(rate) is outside [0, 1)")
        self.rate = rate
    }

    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, count: Int, training: Bool,
                        using generator: inout SeededGenerator) -> UnsafeMutablePointer<Float> {
        self.count = count
        output.reserve(count)
        let y = output.pointer
        active = training && rate > 0
        guard active else {
            y.update(from: x, count: count)
            return y
        }
        scale.reserve(count)
        let keep = 1 / (1 - rate)
        for i in 0..<count {
            scale[i] = generator.uniform() < rate ? 0 : keep
            y[i] = x[i] * scale[i]
        }
        return y
    }

    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        inputGradient.reserve(count)
        let dx = inputGradient.pointer
        if active {
            for i in 0..<count { dx[i] = dy[i] * scale[i] }
        } else {
            dx.update(from: dy, count: count)
        }
        return dx
    }
}
