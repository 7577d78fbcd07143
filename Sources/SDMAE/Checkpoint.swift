import Foundation
import NN
import Storage

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case missingTensor(path: String, name: String)
    case shapeMismatch(path: String, name: String, expected: [Int], found: [Int])
    case badMetadata(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missingTensor(path, name): return "\(path): checkpoint has no tensor \(name)"
        case let .shapeMismatch(path, name, expected, found): return "\(path): \(name) has shape \(found), the model needs \(expected)"
        case let .badMetadata(path, reason): return "\(path): \(reason)"
        }
    }
}

extension SDMAEModel {
    /// Parameters and buffers under the spec's names (loadable by PyTorch's `load_state_dict`).
    public func stateTensors() -> [(name: String, shape: [Int], values: [Float])] {
        var tensors = parameters.map { (name: $0.name, shape: $0.shape, values: $0.value.array) }
        tensors += encoder.buffers
        tensors.append((name: "decoder_pos_embed", shape: [1, config.tokens, config.decoderWidth], values: decoderPositions))
        tensors.append((name: "center", shape: [1, config.prototypes], values: center))
        return tensors
    }

    /// Loads parameters and the centre from tensors named as in `stateTensors`; position tables
    /// are fixed and recomputed, not read.
    public func load(_ tensors: [String: NamedTensor], path: String) throws {
        for parameter in parameters {
            guard let tensor = tensors[parameter.name] else { throw CheckpointError.missingTensor(path: path, name: parameter.name) }
            guard tensor.shape == parameter.shape, tensor.floats.count == parameter.count else {
                throw CheckpointError.shapeMismatch(path: path, name: parameter.name, expected: parameter.shape, found: tensor.shape)
            }
            parameter.value.copy(from: tensor.floats)
        }
        if let stored = tensors["center"] {
            guard stored.floats.count == config.prototypes else {
                throw CheckpointError.shapeMismatch(path: path, name: "center", expected: [1, config.prototypes], found: stored.shape)
            }
            center = stored.floats
        }
    }
}
