import Foundation

/// Area under the ROC curve by the Mann–Whitney statistic, ties counted half.
public enum ROC {
    /// The ROC curve's corners, from (0, 0) to (1, 1): false and true positive rates as the
    /// threshold falls through the scores, tied scores taken together (a diagonal step).
    public static func curve(scores: [Float], positive: [Bool]) -> [(falsePositiveRate: Double, truePositiveRate: Double)] {
        let positives = Double(positive.filter { $0 }.count), negatives = Double(positive.count) - positives
        guard positives > 0, negatives > 0 else { return [] }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var points = [(falsePositiveRate: 0.0, truePositiveRate: 0.0)]
        var (tp, fp, start) = (0.0, 0.0, 0)
        while start < order.count {
            var end = start
            while end + 1 < order.count && scores[order[end + 1]] == scores[order[start]] { end += 1 }
            for i in start...end { if positive[order[i]] { tp += 1 } else { fp += 1 } }
            points.append((fp / negatives, tp / positives))
            start = end + 1
        }
        return points
    }

    /// AUC of `scores` separating `positive` from the rest; nil when one side is empty.
    public static func auc(scores: [Float], positive: [Bool]) -> Double? {
        let positives = positive.filter { $0 }.count, negatives = positive.count - positives
        guard positives > 0, negatives > 0 else { return nil }
        let ranks = midranks(scores)
        let positiveRanks = zip(ranks, positive).filter { $0.1 }.map(\.0).reduce(0, +)
        return (positiveRanks - Double(positives * (positives + 1)) / 2) / Double(positives * negatives)
    }

    /// One-vs-rest AUC per class (nil for a class absent from, or alone in, `truth`) and their
    /// mean over the defined ones. `probabilities` is samples×classes.
    public static func oneVsRest(probabilities: [Float], truth: [Int], classes: Int) -> (perClass: [Double?], macro: Double?) {
        let perClass = (0..<classes).map { c in
            auc(scores: truth.indices.map { probabilities[$0 * classes + c] }, positive: truth.map { $0 == c })
        }
        let defined = perClass.compactMap { $0 }
        return (perClass, defined.isEmpty ? nil : defined.reduce(0, +) / Double(defined.count))
    }
}

/// 1-based ranks of `scores` in ascending order, tied scores sharing the mean of their ranks.
public func midranks(_ scores: [Float]) -> [Double] {
    let order = scores.indices.sorted { scores[$0] < scores[$1] }
    var ranks = [Double](repeating: 0, count: scores.count)
    var start = 0
    while start < order.count {
        var end = start
        while end + 1 < order.count && scores[order[end + 1]] == scores[order[start]] { end += 1 }
        for i in start...end { ranks[order[i]] = Double(start + end) / 2 + 1 }
        start = end + 1
    }
    return ranks
}

/// Each score's percentile rank within its slide, in (0, 1], ties sharing the mean rank: SciPy's
/// `percentileofscore(kind='rank')`, which CLAM's heatmaps use so colours compare across slides.
public func percentileRanks(_ scores: [Float]) -> [Float] {
    midranks(scores).map { Float($0 / Double(scores.count)) }
}
