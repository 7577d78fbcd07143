import Foundation
import NN
import Results

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
