import Foundation
import NN
import Storage

/// Files of a pretraining run directory.
public enum RunFiles {
    public static let metrics = "metrics.csv"
    public static let latest = "checkpoint.json"
    public static let finalModel = "model.safetensors"
    public static let checkpoints = "checkpoints"
    /// An adapted published encoder, in its own file layout, and its config (`--encoder`).
    public static let adaptedEncoder = "encoder.safetensors"
    public static let adaptedEncoderConfig = "encoder.json"
}

/// Where the newest complete checkpoint is; rewritten atomically after both of its files exist,
/// so a kill at any moment leaves a consistent pointer.
public struct CheckpointPointer: Codable, Equatable, Sendable {
    public var step: Int
    public var model: String
    public var optimizer: String
}

extension SDMAEModel {
    /// Model weights under the spec's names with the config in the metadata (loads in PyTorch).
    public func writeWeights(to path: String, step: Int) throws {
        let config = String(decoding: try JSONFile.encode(self.config, pretty: false), as: UTF8.self)
        try Safetensors.write(stateTensors(), metadata: ["format": "sdmae", "config": config, "step": String(step)], to: path)
    }

    /// The adapted encoder as the published one was stored (names, layout) with its config beside
    /// it, so `--encoder DIR/encoder.json --weights DIR/encoder.safetensors` and timm read it.
    public func writeAdaptedEncoder(into directory: String) throws {
        guard let published = encoder as? PublishedEncoder, let start = config.encoderStart else { return }
        let configJSON = try JSONFile.encode(start.config, pretty: true)
        try Safetensors.write(published.vit.namedTensors(), metadata: ["format": "pt", "adapted_from": start.name,
                                                                       "config": String(decoding: configJSON, as: UTF8.self)],
                              to: directory + "/" + RunFiles.adaptedEncoder)
        try AtomicFile.write(configJSON, to: directory + "/" + RunFiles.adaptedEncoderConfig)
    }

    /// A model from a checkpoint written by `writeWeights`, or from a PyTorch state dict plus the
    /// config it was made with (`fallback`).
    public static func load(path: String, fallback: SDMAEConfig? = nil) throws -> SDMAEModel {
        let (config, tensors) = try readCheckpoint(path: path, fallback: fallback)
        let model = SDMAEModel(config: config)
        try model.load(tensors, path: path)
        return model
    }

    /// A checkpoint's config (from its metadata, else `fallback`) and tensors, not yet in a model.
    static func readCheckpoint(path: String, fallback: SDMAEConfig? = nil) throws -> (SDMAEConfig, [String: NamedTensor]) {
        let (tensors, metadata) = try Safetensors.read(path: path)
        let config: SDMAEConfig
        if let json = metadata["config"] {
            do { config = try JSONDecoder().decode(SDMAEConfig.self, from: Data(json.utf8)) } catch {
                throw CheckpointError.badMetadata(path: path, reason: "config metadata is not a valid SD-MAE config: \(describeError(error))")
            }
        } else if let fallback {
            config = fallback
        } else {
            throw CheckpointError.badMetadata(path: path, reason: "no config in the metadata; name the preset it was trained with")
        }
        if let problem = config.validationError() { throw CheckpointError.badMetadata(path: path, reason: "config: \(problem)") }
        try checkShapes(config, tensors, path: path)
        return (config, tensors)
    }

    /// The config must describe the tensors in the file before a model of that size is allocated:
    /// a config claiming 10⁶ blocks over a 10 MB file is a damaged or hostile file, not a model.
    private static func checkShapes(_ config: SDMAEConfig, _ tensors: [String: NamedTensor], path: String) throws {
        func blocks(_ prefix: String) -> Int {
            Set(tensors.keys.compactMap { name -> Int? in
                guard name.hasPrefix(prefix) else { return nil }
                return name.dropFirst(prefix.count).split(separator: ".").first.flatMap { Int($0) }
            }).count
        }
        let found = (encoder: blocks("blocks."), decoder: blocks("decoder_blocks."))
        guard found.encoder == config.depth, found.decoder == config.decoderDepth else {
            throw CheckpointError.badMetadata(path: path, reason: "the config says \(config.depth) encoder and \(config.decoderDepth) decoder blocks, "
                                              + "the file holds \(found.encoder) and \(found.decoder)")
        }
        let patchEmbedding = "patch_embed.proj.weight"
        let expected = [config.width, 3, config.patchSize, config.patchSize]
        guard let tensor = tensors[patchEmbedding] else { throw CheckpointError.missingTensor(path: path, name: patchEmbedding) }
        guard tensor.shape == expected else {
            throw CheckpointError.shapeMismatch(path: path, name: patchEmbedding, expected: expected, found: tensor.shape)
        }
        // A published encoder's MLP is as wide as its weights say, not a fixed ratio.
        if let start = config.encoderStart {
            let fc1 = "blocks.0.mlp.fc1.weight", expected = [start.hiddenWidth, config.width]
            guard let tensor = tensors[fc1] else { throw CheckpointError.missingTensor(path: path, name: fc1) }
            guard tensor.shape == expected else { throw CheckpointError.shapeMismatch(path: path, name: fc1, expected: expected, found: tensor.shape) }
        }
    }
}

extension AdamW {
    func writeState(to path: String) throws {
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        for (i, p) in parameters.enumerated() {
            tensors.append((name: "exp_avg." + p.name, shape: p.shape, values: firstMoments[i].array))
            tensors.append((name: "exp_avg_sq." + p.name, shape: p.shape, values: secondMoments[i].array))
        }
        try Safetensors.write(tensors, metadata: ["step": String(step)], to: path)
    }

    func readState(from path: String) throws {
        let (tensors, metadata) = try Safetensors.read(path: path)
        guard let step = metadata["step"].flatMap(Int.init) else { throw CheckpointError.badMetadata(path: path, reason: "no optimiser step") }
        for (i, p) in parameters.enumerated() {
            for (prefix, buffer) in [("exp_avg.", firstMoments[i]), ("exp_avg_sq.", secondMoments[i])] {
                guard let t = tensors[prefix + p.name] else { throw CheckpointError.missingTensor(path: path, name: prefix + p.name) }
                guard t.floats.count == p.count else {
                    throw CheckpointError.shapeMismatch(path: path, name: prefix + p.name, expected: p.shape, found: t.shape)
                }
                buffer.copy(from: t.floats)
            }
        }
        restore(step: step)
    }
}
