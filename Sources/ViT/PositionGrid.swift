import Foundation

/// timm's `resample_abs_pos_embed`: the patch part of a position table, [g0·g0, D] as a D-channel
/// g0×g0 image, resized to g×g as `interpolate(mode="bicubic", antialias=True,
/// align_corners=False)` does (Keys' cubic with a = −0.5, support widened by the downscale
/// factor), one axis at a time.
public enum PositionGrid {
    public static func resample(_ table: UnsafePointer<Float>, width: Int, from old: Int, to new: Int) -> [Float] {
        guard old != new else { return Array(UnsafeBufferPointer(start: table, count: old * old * width)) }
        let weights = axisWeights(input: old, output: new)
        // Columns first: [old rows, new columns, D].
        var columns = [Float](repeating: 0, count: old * new * width)
        for row in 0..<old {
            for (column, (first, w)) in weights.enumerated() {
                let out = (row * new + column) * width
                for d in 0..<width {
                    var sum: Float = 0
                    for (i, weight) in w.enumerated() { sum += weight * table[(row * old + first + i) * width + d] }
                    columns[out + d] = sum
                }
            }
        }
        var result = [Float](repeating: 0, count: new * new * width)
        for (row, (first, w)) in weights.enumerated() {
            for column in 0..<new {
                let out = (row * new + column) * width
                for d in 0..<width {
                    var sum: Float = 0
                    for (i, weight) in w.enumerated() { sum += weight * columns[((first + i) * new + column) * width + d] }
                    result[out + d] = sum
                }
            }
        }
        return result
    }

    static func cubic(_ x: Double) -> Double {
        let a = -0.5, x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    /// Per output index: the first input index and the normalised weights that follow.
    static func axisWeights(input: Int, output: Int) -> [(Int, [Float])] {
        let scale = Double(input) / Double(output)
        let support = 2 * max(scale, 1), inverse = scale >= 1 ? 1 / scale : 1
        return (0..<output).map { i in
            let center = scale * (Double(i) + 0.5)
            let first = max(Int(center - support + 0.5), 0)
            let last = min(Int(center + support + 0.5), input)
            var w = (first..<last).map { cubic((Double($0) - center + 0.5) * inverse) }
            let total = w.reduce(0, +)
            if total != 0 { w = w.map { $0 / total } }
            return (first, w.map(Float.init))
        }
    }
}
