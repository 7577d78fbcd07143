import Foundation
import NN
import Storage

public enum MILCheckpointError: Error, CustomStringConvertible, Equatable {
    case badConfig(path: String, reason: String)
    case missingTensor(path: String, name: String)
    case shapeMismatch(path: String, name: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case let .badConfig(path, reason): return "\(path): \(reason)"
        case let .missingTensor(path, name): return "\(path): no tensor \(name); is this an attention-MIL checkpoint?"
        case let .shapeMismatch(path, name, expected, found): return "\(path): \(name) has shape \(found), the config needs \(expected)"
        }
    }
}

extension AttentionMIL {
    /// Writes the parameters under CLAM's names with the config as JSON in the `config` metadata.
    public func write(to path: String, metadata: [String: String] = [:]) throws {
        try AtomicFile.write(try encoded(metadata: metadata), to: path)
    }

    /// The checkpoint file's bytes.
    public func encoded(metadata: [String: String] = [:]) throws -> Data {
        let config = String(decoding: try JSONFile.encode(self.config, pretty: false), as: UTF8.self)
        let tensors = parameters.map { (name: $0.name, shape: $0.shape, values: $0.value.array) }
        return try Safetensors.encode(tensors, metadata: metadata.merging(["config": config]) { $1 })
    }

    /// Loads a checkpoint written by `write`, or a CLAM state dict converted to safetensors whose
    /// metadata carries the config (at least `embed_dim` and `classes`; `size` defaults to CLAM's
    /// small model).
    public static func load(path: String) throws -> AttentionMIL {
        let (tensors, metadata) = try Safetensors.read(path: path)
        guard let text = metadata["config"] else {
            throw MILCheckpointError.badConfig(path: path, reason: "no 'config' metadata (JSON with embed_dim, classes, size)")
        }
        let config: MILConfig
        do {
            config = try JSONDecoder().decode(MILConfig.self, from: Data(text.utf8))
        } catch {
            throw MILCheckpointError.badConfig(path: path, reason: "the 'config' metadata is not a MIL config: \(describeError(error))")
        }
        if let problem = config.problem { throw MILCheckpointError.badConfig(path: path, reason: problem) }
        let model = AttentionMIL(config: config)
        for parameter in model.parameters {
            guard let tensor = tensors[parameter.name] else { throw MILCheckpointError.missingTensor(path: path, name: parameter.name) }
            guard tensor.shape == parameter.shape, tensor.floats.count == parameter.count else {
                throw MILCheckpointError.shapeMismatch(path: path, name: parameter.name, expected: parameter.shape, found: tensor.shape)
            }
            parameter.value.copy(from: tensor.floats)
        }
        return model
    }
}
