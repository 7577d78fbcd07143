import Foundation

/// One MIL model, or the fold models of a cross-validated run voting together: probabilities
/// and raw attention are averaged over the models.
public struct MILEnsemble {
    public let models: [AttentionMIL]
    public let paths: [String]

    /// A checkpoint file, or a train-mil folder (all its `fold-*.safetensors`).
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw MILCheckpointError.badConfig(path: path, reason: "no such file or folder")
        }
        var paths = [path]
        if isDirectory.boolValue {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
            paths = names.map { path + "/" + $0 }
            guard !paths.isEmpty else { throw MILCheckpointError.badConfig(path: path, reason: "no .safetensors model in this folder") }
        }
        let models = try paths.map(AttentionMIL.load)
        for (model, other) in zip(models.dropFirst(), paths.dropFirst()) {
            let first = models[0].config
            guard model.config.embedDim == first.embedDim, model.config.classes == first.classes, model.config.classNames == first.classNames else {
                throw MILCheckpointError.badConfig(path: other, reason: "takes \(model.config.embedDim) features into \(model.config.classes) classes, "
                                                   + "unlike \(paths[0]) (\(first.embedDim) into \(first.classes))")
            }
        }
        self.models = models
        self.paths = paths
    }

    public var config: MILConfig { models[0].config }
    public var classNames: [String] { (0..<config.classes).map(config.className) }

    public func predict(_ bag: FeatureBag) throws -> (probabilities: [Float], rawAttention: [Float]) {
        var probabilities = [Float](repeating: 0, count: config.classes)
        var attention = [Float](repeating: 0, count: bag.tiles)
        for model in models {
            let output = try model.predict(bag.features)
            for i in probabilities.indices { probabilities[i] += output.probabilities[i] / Float(models.count) }
            for i in attention.indices { attention[i] += output.rawAttention[i] / Float(models.count) }
        }
        return (probabilities, attention)
    }
}
