import Foundation

/// AdamW with PyTorch semantics: decoupled decay (w −= lr·wd·w) before the bias-corrected Adam
/// update; parameters with `decay == false` skip the decay. A parameter's `learningRateScale`
/// multiplies the learning rate (PyTorch's per-group `lr`); at 0 it is left exactly as it is.
public final class AdamW {
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    public let parameters: [Parameter]
    /// First and second moments, one buffer per parameter, in `parameters` order.
    public let firstMoments: [Buffer]
    public let secondMoments: [Buffer]
    public private(set) var step = 0

    public init(parameters: [Parameter], learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.95,
                epsilon: Float = 1e-8, weightDecay: Float = 0.05) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        firstMoments = parameters.map { Buffer(count: $0.count) }
        secondMoments = parameters.map { Buffer(count: $0.count) }
    }

    public func zeroGradients() { for p in parameters { p.grad.zero() } }

    /// L2 norm of all gradients together, in double precision.
    public func gradientNorm() -> Double {
        var sum = 0.0
        for p in parameters {
            let g = p.grad.pointer
            for i in 0..<p.count { sum += Double(g[i]) * Double(g[i]) }
        }
        return sum.squareRoot()
    }

    public func update() {
        step += 1
        let correction1 = 1 - pow(Double(beta1), Double(step))
        let correction2 = 1 - pow(Double(beta2), Double(step))
        let sqrtCorrection2 = Float(correction2.squareRoot())
        let (beta1, beta2, epsilon) = (beta1, beta2, epsilon)
        for (index, p) in parameters.enumerated() where p.learningRateScale > 0 {
            let learningRate = learningRate * p.learningRateScale
            let stepSize = Float(Double(learningRate) / correction1)
            let w = p.value.pointer, g = p.grad.pointer
            let m = firstMoments[index].pointer, v = secondMoments[index].pointer
            let decay: Float = p.decay ? 1 - learningRate * weightDecay : 1
            Parallel.forChunks(p.count, grain: 32768) { range in
                for i in range {
                    w[i] *= decay
                    m[i] = beta1 * m[i] + (1 - beta1) * g[i]
                    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
                    w[i] -= stepSize * m[i] / (v[i].squareRoot() / sqrtCorrection2 + epsilon)
                }
            }
        }
    }

    /// Restores the step count from a checkpoint (moments are restored through their buffers).
    public func restore(step: Int) { self.step = step }
}

/// Linear warm-up to `peak`, then half-cosine decay to `minimum` at `totalSteps`.
public struct WarmupCosineSchedule: Sendable {
    public var peak: Double
    public var minimum: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Double, minimum: Double, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak
        self.minimum = minimum
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    public func learningRate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        return minimum + (peak - minimum) * 0.5 * (1 + cos(.pi * progress))
    }
}
