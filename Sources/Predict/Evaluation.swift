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
        precision = (0..<c).map { k in
            let total = (0..<c).map { confusion[$0][k] }.reduce(0, +)
            return total == 0 ? 0 : Double(confusion[k][k]) / Double(total)
        }
        // Mean recall over the classes present among the held-out samples.
        let present = (0..<c).filter { confusion[$0].reduce(0, +) > 0 }
        balancedAccuracy = present.isEmpty ? 0 : present.map { recall[$0] }.reduce(0, +) / Double(present.count)
        self.recall = recall
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
    /// Per class, a seeded shuffle and the first `fraction` (at least one when the class has two
    /// or more samples) held out: every class is represented on both sides.
    public static func stratifiedSplit(labels: [Int], classes: Int, fraction: Double, seed: UInt64) -> (train: [Int], test: [Int]) {
        var generator = SeededGenerator(seed: seed)
        var train: [Int] = [], test: [Int] = []
        for k in 0..<classes {
            var members = labels.indices.filter { labels[$0] == k }
            for i in stride(from: members.count - 1, to: 0, by: -1) { members.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
            let held = members.count >= 2 ? max(1, Int((Double(members.count) * fraction).rounded())) : 0
            test += members.prefix(held)
            train += members.dropFirst(held)
        }
        return (train.sorted(), test.sorted())
    }

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
