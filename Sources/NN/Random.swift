import Foundation

/// Seeded generator (SplitMix64): the same seed gives the same weights, masks and augmentations
/// on every machine. No global state: every consumer owns one.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Standard normal by Box–Muller.
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) * 0x1p-53, 1e-300), u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }

    /// Normal with standard deviation `std`, redrawn outside ±2 std (timm's trunc_normal_).
    public mutating func truncatedNormal(std: Float) -> Float {
        while true {
            let z = normal()
            if abs(z) <= 2 { return z * std }
        }
    }
}

extension Parameter {
    /// Xavier/Glorot uniform over [out, in] (MAE's init for every Linear and the patch embedding).
    public func initialiseXavierUniform(using generator: inout SeededGenerator) {
        let fanOut = shape[0], fanIn = count / shape[0]
        let bound = (6 / Float(fanIn + fanOut)).squareRoot()
        for i in 0..<count { value[i] = (generator.uniform() * 2 - 1) * bound }
    }

    public func initialiseTruncatedNormal(std: Float, using generator: inout SeededGenerator) {
        for i in 0..<count { value[i] = generator.truncatedNormal(std: std) }
    }

    public func initialiseNormal(std: Float, using generator: inout SeededGenerator) {
        for i in 0..<count { value[i] = generator.normal() * std }
    }
}
