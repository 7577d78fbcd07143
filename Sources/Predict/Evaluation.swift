import Foundation
import NN

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

public enum Evaluation {
    /// k-nearest-neighbour vote by cosine similarity (each neighbour weighs its similarity).
    public static func knn(trainFeatures: [Float], trainLabels: [Int], testFeatures: [Float], width: Int, classes: Int, k: Int = 20) -> [Int] {
        func normalised(_ f: [Float]) -> [Float] {
            var out = f
            for i in 0..<(f.count / width) {
                var norm: Float = 0
                for j in 0..<width { norm += f[i * width + j] * f[i * width + j] }
                norm = max(norm.squareRoot(), 1e-12)
                for j in 0..<width { out[i * width + j] /= norm }
            }
            return out
        }
        let train = normalised(trainFeatures), test = normalised(testFeatures)
        let nTrain = trainLabels.count
        return (0..<(testFeatures.count / width)).map { i in
            var similarities = [(Float, Int)]()
            similarities.reserveCapacity(nTrain)
            for t in 0..<nTrain {
                var s: Float = 0
                for j in 0..<width { s += test[i * width + j] * train[t * width + j] }
                similarities.append((s, trainLabels[t]))
            }
            similarities.sort { $0.0 > $1.0 }
            var votes = [Double](repeating: 0, count: classes)
            for (s, label) in similarities.prefix(k) { votes[label] += Double(max(s, 0)) + 1e-6 }
            return votes.indices.max { votes[$0] < votes[$1] } ?? 0
        }
    }
}
