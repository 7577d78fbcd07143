import CKernels
import Foundation

/// Numerically stable softmax of each of `rows` rows of `count` values, in place.
@inline(__always)
public func softmaxRowsInPlace(_ x: UnsafeMutablePointer<Float>, rows: Int, count: Int) {
    ck_softmax_rows(x, rows, count)
}

/// Numerically stable softmax of one row.
@inline(__always)
public func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
    ck_softmax_rows(x, 1, count)
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
