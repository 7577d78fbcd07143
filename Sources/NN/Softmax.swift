import Foundation

/// Numerically stable softmax of one row.
@inline(__always)
public func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
    var maximum = -Float.infinity
    for i in 0..<count { maximum = max(maximum, x[i]) }
    let shift = SIMD8<Float>(repeating: maximum)
    var sums = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= count {
        let e = FastMath.exp(load8(x + i) - shift)
        store8(e, x + i)
        sums += e
        i += 8
    }
    var sum = sums.sum()
    while i < count {
        x[i] = expf(x[i] - maximum)
        sum += x[i]
        i += 1
    }
    let inverse = 1 / sum
    for j in 0..<count { x[j] *= inverse }
}

/// Numerically stable log-softmax of one row.
@inline(__always)
public func logSoftmaxInPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
    var maximum = -Float.infinity
    for i in 0..<count { maximum = max(maximum, x[i]) }
    var sum: Float = 0
    for i in 0..<count { sum += expf(x[i] - maximum) }
    let logSum = maximum + logf(sum)
    for i in 0..<count { x[i] -= logSum }
}
