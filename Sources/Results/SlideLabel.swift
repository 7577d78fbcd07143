import Foundation
import Storage

/// How per-tile class probabilities become slide-level scores.
public enum AggregationRule: Equatable, Sendable {
    case mean
    case max
    /// Mean of the k highest tile probabilities of each class.
    case topK(Int)
    /// Fraction of tiles whose most probable class it is.
    case majority
    /// Fraction of tiles whose probability of the class is at least the threshold.
    case fractionAbove(Double)

    /// The rules as manifests and the command line name them; k and the threshold are options of their own.
    public enum Kind: String, CaseIterable, Sendable {
        case mean, max, topk, majority, fraction
    }

    public init(_ kind: Kind, k: Int, threshold: Double) {
        switch kind {
        case .mean: self = .mean
        case .max: self = .max
        case .topk: self = .topK(Swift.max(1, k))
        case .majority: self = .majority
        case .fraction: self = .fractionAbove(threshold)
        }
    }

    public var name: String {
        switch self {
        case .mean: return "mean"
        case .max: return "max"
        case let .topK(k): return "topk(k=\(k))"
        case .majority: return "majority"
        case let .fractionAbove(t): return "fraction(threshold=\(t))"
        }
    }
}

public struct SlideLabel: Codable, Equatable, Sendable {
    public var slide: String
    public var label: String
    public var rule: String
    public var tiles: Int
    /// Slide score per class name.
    public var scores: [String: Double]
}

public enum Aggregation {
    /// `probabilities` is [tiles, classes], row-major. The label is the class with the highest
    /// slide score (ties go to the earlier class).
    public static func label(slide: String, probabilities: [Float], classes: [String], rule: AggregationRule) -> SlideLabel {
        let c = classes.count, n = c == 0 ? 0 : probabilities.count / c
        var scores = [Double](repeating: 0, count: c)
        if n > 0 {
            for k in 0..<c {
                let column = (0..<n).map { Double(probabilities[$0 * c + k]) }
                switch rule {
                case .mean: scores[k] = column.reduce(0, +) / Double(n)
                case .max: scores[k] = column.max() ?? 0
                case let .topK(top):
                    let best = column.sorted(by: >).prefix(max(1, top))
                    scores[k] = best.reduce(0, +) / Double(best.count)
                case .majority:
                    scores[k] = Double((0..<n).filter { i in argmax(probabilities, row: i, width: c) == k }.count) / Double(n)
                case let .fractionAbove(threshold):
                    scores[k] = Double(column.filter { $0 >= threshold }.count) / Double(n)
                }
            }
        }
        let best = scores.indices.max { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 > $1) }
        return SlideLabel(slide: slide, label: n == 0 ? "" : best.map { classes[$0] } ?? "", rule: rule.name, tiles: n,
                          scores: Dictionary(uniqueKeysWithValues: zip(classes, scores)))
    }

    static func argmax(_ values: [Float], row: Int, width: Int) -> Int {
        var best = 0
        for k in 1..<max(1, width) where values[row * width + k] > values[row * width + best] { best = k }
        return best
    }
}

extension Aggregation {
    /// The batch table: one row per slide, a score column per class.
    public static func table(_ labels: [SlideLabel]) -> String {
        let classes = Array(Set(labels.flatMap { $0.scores.keys })).sorted()
        var csv = CSV.row(["slide", "label", "rule", "tiles"] + classes.map { "score_" + $0 })
        for label in labels {
            csv += CSV.row([label.slide, label.label, label.rule, String(label.tiles)] + classes.map { String(format: "%.6f", label.scores[$0] ?? .nan) })
        }
        return csv
    }

    public static func json(_ label: SlideLabel) throws -> Data {
        return try JSONFile.encode(label)
    }
}
