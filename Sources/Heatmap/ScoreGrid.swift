import Foundation

/// Per-tile scores laid on a grid of stride-sized cells over the slide. Overlapping tiles are
/// averaged in the cells they share; cells no tile covers are NaN (no tissue, drawn transparent).
public struct ScoreGrid: Equatable, Sendable {
    public let columns: Int
    public let rows: Int
    /// Level-0 pixels per cell.
    public let cellSize: Double
    public var values: [Float]

    public init(columns: Int, rows: Int, cellSize: Double, values: [Float]) {
        precondition(values.count == columns * rows)
        self.columns = columns
        self.rows = rows
        self.cellSize = cellSize
        self.values = values
    }

    /// `origins` are level-0 top-left corners of tiles `footprint` wide, laid every `stride`.
    public init(origins: [(x: Int, y: Int)], scores: [Float], footprint: Int, stride: Double, slideWidth: Int, slideHeight: Int) {
        precondition(origins.count == scores.count, "one score per tile")
        columns = max(1, Int((Double(slideWidth) / stride).rounded(.up)))
        rows = max(1, Int((Double(slideHeight) / stride).rounded(.up)))
        cellSize = stride
        var sums = [Double](repeating: 0, count: columns * rows)
        var counts = [Int](repeating: 0, count: columns * rows)
        for (origin, score) in zip(origins, scores) where score.isFinite {
            // Cells whose centre lies inside the tile.
            let c0 = max(0, Int((Double(origin.x) / stride).rounded())), r0 = max(0, Int((Double(origin.y) / stride).rounded()))
            let c1 = min(columns, Int((Double(origin.x + footprint) / stride).rounded())), r1 = min(rows, Int((Double(origin.y + footprint) / stride).rounded()))
            for r in r0..<max(r0, r1) {
                for c in c0..<max(c0, c1) {
                    sums[r * columns + c] += Double(score)
                    counts[r * columns + c] += 1
                }
            }
        }
        values = zip(sums, counts).map { $1 == 0 ? .nan : Float($0 / Double($1)) }
    }

    public subscript(column: Int, row: Int) -> Float { values[row * columns + column] }

    public var range: ClosedRange<Float>? {
        let finite = values.filter(\.isFinite)
        guard let low = finite.min(), let high = finite.max() else { return nil }
        return low...high
    }

    /// Gaussian smoothing (σ in cells) that ignores empty cells and keeps them empty.
    public func smoothed(sigma: Double) -> ScoreGrid {
        guard sigma > 0 else { return self }
        let radius = Int((3 * sigma).rounded(.up))
        let kernel = (-radius...radius).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        func pass(_ input: [Float], horizontal: Bool) -> ([Double], [Double]) {
            var sums = [Double](repeating: 0, count: input.count), weights = sums
            for r in 0..<rows {
                for c in 0..<columns {
                    var s = 0.0, w = 0.0
                    for (k, weight) in kernel.enumerated() {
                        let offset = k - radius
                        let cc = horizontal ? c + offset : c, rr = horizontal ? r : r + offset
                        guard cc >= 0, cc < columns, rr >= 0, rr < rows else { continue }
                        let v = input[rr * columns + cc]
                        if v.isFinite { s += weight * Double(v); w += weight }
                    }
                    sums[r * columns + c] = s
                    weights[r * columns + c] = w
                }
            }
            return (sums, weights)
        }
        // Normalised convolution, separably: blur values·mask and mask, then divide.
        let (hs, hw) = pass(values, horizontal: true)
        let numerator = pass(hs.map(Float.init), horizontal: false).0
        let denominator = pass(hw.map(Float.init), horizontal: false).0
        var out = values
        for i in 0..<values.count where values[i].isFinite {
            out[i] = denominator[i] > 0 ? Float(numerator[i] / denominator[i]) : values[i]
        }
        return ScoreGrid(columns: columns, rows: rows, cellSize: cellSize, values: out)
    }
}
