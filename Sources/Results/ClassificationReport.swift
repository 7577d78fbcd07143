import Foundation

/// Held-out metrics of a classifier, as printed and saved to JSON.
public struct ClassificationReport: Codable, Equatable, Sendable {
    public var classes: [String]
    public var samples: Int
    public var accuracy: Double
    public var balancedAccuracy: Double
    public var precision: [Double]
    public var recall: [Double]
    public var f1: [Double]
    /// Mean F1 over the classes present among the held-out samples.
    public var macroF1: Double
    /// confusion[true][predicted]
    public var confusion: [[Int]]

    public init(truth: [Int], predicted: [Int], classes: [String]) {
        let c = classes.count
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: c), count: c)
        for (t, p) in zip(truth, predicted) { confusion[t][p] += 1 }
        self.classes = classes
        samples = truth.count
        self.confusion = confusion
        accuracy = truth.isEmpty ? 0 : Double(zip(truth, predicted).filter { $0 == $1 }.count) / Double(truth.count)
        let recall = (0..<c).map { k in
            let total = confusion[k].reduce(0, +)
            return total == 0 ? 0 : Double(confusion[k][k]) / Double(total)
        }
        let precision = (0..<c).map { k in
            let total = (0..<c).map { confusion[$0][k] }.reduce(0, +)
            return total == 0 ? 0 : Double(confusion[k][k]) / Double(total)
        }
        self.precision = precision
        // Mean recall over the classes present among the held-out samples.
        let present = (0..<c).filter { confusion[$0].reduce(0, +) > 0 }
        balancedAccuracy = present.isEmpty ? 0 : present.map { recall[$0] }.reduce(0, +) / Double(present.count)
        self.recall = recall
        let f1 = (0..<c).map { k in precision[k] + recall[k] > 0 ? 2 * precision[k] * recall[k] / (precision[k] + recall[k]) : 0 }
        self.f1 = f1
        macroF1 = present.isEmpty ? 0 : present.map { f1[$0] }.reduce(0, +) / Double(present.count)
    }

    public var text: String {
        var lines = [String(format: "%d held-out patches: accuracy %.3f, balanced accuracy %.3f", samples, accuracy, balancedAccuracy)]
        let width = max(10, (classes.map(\.count).max() ?? 0) + 2)
        lines.append("class".padding(toLength: width, withPad: " ", startingAt: 0) + " precision  recall  confusion (row = truth)")
        for (k, name) in classes.enumerated() {
            lines.append(name.padding(toLength: width, withPad: " ", startingAt: 0)
                         + String(format: "   %.3f    %.3f   ", precision[k], recall[k]) + confusion[k].map { String(format: "%5d", $0) }.joined())
        }
        return lines.joined(separator: "\n")
    }
}
