/// Eight-wide exp and erf for the hot loops (softmax, GELU): libm's scalar calls were a tenth of
/// a training step. Accuracy is within a few float32 ulps (checked against libm in the tests).
enum FastMath {
    /// exp by Cody–Waite reduction to r ∈ [−ln2/2, ln2/2] (nearest integer n) and Cephes' polynomial.
    @inline(__always)
    static func exp(_ v: SIMD8<Float>) -> SIMD8<Float> {
        // Callers pass x ≤ 0 (shifted logits, −x²); below −87 the result is 0 in float32.
        let floor = SIMD8<Float>(repeating: -87.3)
        let x = v.replacing(with: floor, where: v .< floor)
        // Adding 1.5·2²³ rounds to an integer in the low mantissa bits (no generic conversions,
        // which Swift does not vectorise).
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = x * 1.44269504088896341 + magic
        let n = shifted - magic
        let r = x - n * 0.693359375 + n * 2.12194440e-4
        var p = SIMD8<Float>(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = p * r * r + r + 1
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let exponent = (integer &+ 127) &<< 23
        return y * unsafeBitCast(exponent, to: SIMD8<Float>.self)
    }

    /// Φ(x), the standard normal CDF, through erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
    @inline(__always)
    static func normalCDF(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let z = x.replacing(with: -x, where: x .< 0) * 0.70710678118654752
        let t = 1 / (1 + 0.3275911 * z)
        var p = SIMD8<Float>(repeating: 1.061405429)
        p = p * t - 1.453152027
        p = p * t + 1.421413741
        p = p * t - 0.284496736
        p = p * t + 0.254829592
        let erfAbs = 1 - p * t * Self.exp(-(z * z))
        let erf = erfAbs.replacing(with: -erfAbs, where: x .< 0)
        return 0.5 * (1 + erf)
    }
}

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

@inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }
