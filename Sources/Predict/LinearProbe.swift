import Foundation
import NN
import Storage

public enum ClassifierError: Error, CustomStringConvertible, Equatable {
    case notLabelled(path: String, reason: String)
    case incompatible(path: String, reason: String)
    case nonFinite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notLabelled(path, reason): return "\(path): \(reason)"
        case let .incompatible(path, reason): return "\(path): \(reason)"
        case let .nonFinite(path, reason): return "\(path): \(reason)"
        }
    }
}

/// Standardised features → linear softmax classifier (the spec's linear probe).
public struct LinearProbe: Equatable, Sendable {
    public var classes: [String]
    public var mean: [Float]
    public var std: [Float]
    /// [classes, width], row-major.
    public var weight: [Float]
    public var bias: [Float]

    public var width: Int { mean.count }

    public struct TrainingSettings: Sendable {
        public var epochs = 300
        public var learningRate: Float = 1e-2
        public var weightDecay: Float = 1e-4
        public var seed: UInt64 = 0
        public init() {}
    }

    /// Full-batch AdamW on the cross-entropy, with the NN layers the encoder uses.
    public static func train(features: [Float], labels: [Int], classes: [String], width: Int,
                             settings: TrainingSettings = TrainingSettings()) throws -> LinearProbe {
        let n = labels.count, c = classes.count
        var mean = [Float](repeating: 0, count: width), std = [Float](repeating: 0, count: width)
        for i in 0..<n { for j in 0..<width { mean[j] += features[i * width + j] } }
        for j in 0..<width { mean[j] /= Float(max(n, 1)) }
        for i in 0..<n { for j in 0..<width { let d = features[i * width + j] - mean[j]; std[j] += d * d } }
        for j in 0..<width { std[j] = max((std[j] / Float(max(n, 1))).squareRoot(), 1e-6) }
        let standardised = Buffer(count: n * width)
        for i in 0..<n { for j in 0..<width { standardised[i * width + j] = (features[i * width + j] - mean[j]) / std[j] } }

        let linear = Linear("classifier", inputs: width, outputs: c)
        linear.computesInputGradient = false
        var generator = SeededGenerator(seed: settings.seed)
        linear.weight.initialiseTruncatedNormal(std: 0.01, using: &generator)
        let optimiser = AdamW(parameters: linear.parameters, learningRate: settings.learningRate, beta1: 0.9, beta2: 0.999,
                              weightDecay: settings.weightDecay)
        let gradient = Buffer(count: n * c)
        for _ in 0..<settings.epochs {
            let logits = try linear.forward(standardised.pointer, rows: n)
            for i in 0..<n {
                let row = gradient.pointer + i * c
                row.update(from: logits + i * c, count: c)
                softmaxInPlace(row, count: c)
                row[labels[i]] -= 1
                for k in 0..<c { row[k] /= Float(n) }
            }
            optimiser.zeroGradients()
            try linear.backward(gradient.pointer)
            optimiser.update()
        }
        return LinearProbe(classes: classes, mean: mean, std: std, weight: linear.weight.value.array, bias: linear.bias!.value.array)
    }

    /// Class probabilities [rows, classes].
    public func probabilities(_ features: [Float]) -> [Float] {
        let n = features.count / width, c = classes.count
        var out = [Float](repeating: 0, count: n * c)
        for i in 0..<n {
            for k in 0..<c {
                var z = bias[k]
                for j in 0..<width { z += weight[k * width + j] * (features[i * width + j] - mean[j]) / std[j] }
                out[i * c + k] = z
            }
            out.withUnsafeMutableBufferPointer { softmaxInPlace($0.baseAddress! + i * c, count: c) }
        }
        return out
    }

    public func write(to path: String, metadata extra: [String: String] = [:]) throws {
        let classesJSON = try String(decoding: JSONSerialization.data(withJSONObject: classes), as: UTF8.self)
        var metadata = extra
        metadata["format"] = "wsi-linear-probe"
        metadata["classes"] = classesJSON
        try Safetensors.write([
            (name: "mean", shape: [width], values: mean), (name: "std", shape: [width], values: std),
            (name: "weight", shape: [classes.count, width], values: weight), (name: "bias", shape: [classes.count], values: bias),
        ], metadata: metadata, to: path)
    }

    public static func read(path: String) throws -> LinearProbe {
        let (tensors, metadata) = try Safetensors.read(path: path)
        guard metadata["format"] == "wsi-linear-probe", let json = metadata["classes"],
              let classes = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String],
              let mean = tensors["mean"]?.floats, let std = tensors["std"]?.floats,
              let weight = tensors["weight"]?.floats, let bias = tensors["bias"]?.floats else {
            throw ClassifierError.incompatible(path: path, reason: "not a classifier written by 'wsi train-classifier'")
        }
        guard std.count == mean.count, weight.count == classes.count * mean.count, bias.count == classes.count else {
            throw ClassifierError.incompatible(path: path, reason: "tensor shapes disagree with \(classes.count) classes")
        }
        guard !classes.isEmpty, Set(classes).count == classes.count else {
            throw ClassifierError.incompatible(path: path, reason: "class names must be present and distinct")
        }
        for (name, values) in [("mean", mean), ("std", std), ("weight", weight), ("bias", bias)] where values.contains(where: { !$0.isFinite }) {
            throw ClassifierError.nonFinite(path: path, reason: "tensor '\(name)' holds NaN or infinity: the classifier is damaged, train it again")
        }
        return LinearProbe(classes: classes, mean: mean, std: std, weight: weight, bias: bias)
    }
}
