import Foundation

/// Numerically stable softmax of one row.
@inline(__always)
public func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
    var maximum = -Float.infinity
    for i in 0..<count { maximum = max(maximum, x[i]) }
    let shift = SIMD8<Float>(repeating: maximum)
    mapSIMD8(x, x, count: count) { FastMath.exp($0 - shift) }
    var sum: Float = 0
    for i in 0..<count { sum += x[i] }
    let inverse = 1 / sum
    for i in 0..<count { x[i] *= inverse }
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
