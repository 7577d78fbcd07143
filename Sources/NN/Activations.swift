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
        for i in 0..<count { y[i] = max(0, x[i]) }
        return y
    }

    /// The output doubles as the mask: y > 0 exactly where x > 0.
    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        inputGradient.reserve(count)
        let (y, dx) = (output.pointer, inputGradient.pointer)
        for i in 0..<count { dx[i] = y[i] > 0 ? dy[i] : 0 }
        return dx
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
