import Foundation

/// MAE's fixed 2-D sin-cos table [grid², width]: the first half of the channels encodes the
/// column, the second half the row; each half is sin(pos·ω_k) for k < width/4, then cos.
public func sinCosPositionTable(width: Int, grid: Int) -> [Float] {
    precondition(width % 4 == 0, "sin-cos position embedding needs a width divisible by 4")
    let quarter = width / 4
    var table = [Float](repeating: 0, count: grid * grid * width)
    for row in 0..<grid {
        for column in 0..<grid {
            let base = (row * grid + column) * width
            for k in 0..<quarter {
                let omega = pow(10000.0, -Double(k) / Double(quarter))
                table[base + k] = Float(sin(Double(column) * omega))
                table[base + quarter + k] = Float(cos(Double(column) * omega))
                table[base + 2 * quarter + k] = Float(sin(Double(row) * omega))
                table[base + 3 * quarter + k] = Float(cos(Double(row) * omega))
            }
        }
    }
    return table
}
