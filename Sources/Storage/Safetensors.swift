import Foundation

/// One tensor of a safetensors file. Float tensors are F32; I64 is read for index tensors.
public struct NamedTensor: Equatable, Sendable {
    public var shape: [Int]
    public var floats: [Float]
    public var integers: [Int64]

    public init(shape: [Int], floats: [Float]) {
        self.shape = shape
        self.floats = floats
        integers = []
    }

    public init(shape: [Int], integers: [Int64]) {
        self.shape = shape
        floats = []
        self.integers = integers
    }
}

/// The safetensors format (Hugging Face): 8-byte little-endian header length, a JSON header
/// naming each tensor's dtype, shape and byte range, then the raw little-endian data.
public enum Safetensors {
    public static func read(path: String) throws -> (tensors: [String: NamedTensor], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StorageError.cannotOpen(path: path, reason: "no such file or unreadable")
        }
        guard data.count >= 8 else { throw StorageError.malformed(path: path, reason: "shorter than a safetensors header") }
        let declaredLength = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        // The length comes from the file: compare it as read, before it becomes an Int.
        guard declaredLength > 0, declaredLength <= UInt64(data.count - 8) else {
            throw StorageError.malformed(path: path, reason: "the header length \(declaredLength) does not fit a file of \(data.count) bytes")
        }
        let headerLength = Int(declaredLength)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + headerLength)) as? [String: Any] else {
            throw StorageError.malformed(path: path, reason: "unreadable safetensors header")
        }
        let body = 8 + headerLength
        var tensors: [String: NamedTensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2,
                  offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= data.count - body,
                  shape.allSatisfy({ $0 >= 0 }), let count = elementCount(shape), count <= offsets[1] - offsets[0] else {
                throw StorageError.malformed(path: path, reason: "bad entry for tensor \(name)")
            }
            let bytes = data.subdata(in: body + offsets[0]..<body + offsets[1])
            switch dtype {
            case "F32":
                guard bytes.count == count * 4 else { throw StorageError.malformed(path: path, reason: "\(name): size does not match shape") }
                var floats = [Float](repeating: 0, count: count)
                floats.withUnsafeMutableBytes { _ = bytes.copyBytes(to: $0) }
                tensors[name] = NamedTensor(shape: shape, floats: floats)
            case "I64":
                guard bytes.count == count * 8 else { throw StorageError.malformed(path: path, reason: "\(name): size does not match shape") }
                var ints = [Int64](repeating: 0, count: count)
                ints.withUnsafeMutableBytes { _ = bytes.copyBytes(to: $0) }
                tensors[name] = NamedTensor(shape: shape, integers: ints)
            default:
                throw StorageError.malformed(path: path, reason: "\(name): dtype \(dtype) is not supported (F32 and I64 are)")
            }
        }
        return (tensors, metadata)
    }

    /// The tensors of a weight file (F32, F16 or BF16), values left on disk until `TensorFile.read`.
    public static func index(path: String) throws -> TensorFile {
        let file = try FileReader(path: path)
        let lengthBytes = try file.bytes(at: 0, count: 8, reading: "the header length")
        let declaredLength = lengthBytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard declaredLength > 0, declaredLength <= UInt64(file.size - 8), declaredLength <= 100_000_000 else {
            throw StorageError.malformed(path: path, reason: "the header length \(declaredLength) does not fit a file of \(file.size) bytes: "
                + "not a safetensors file")
        }
        let headerLength = Int(declaredLength)
        let headerBytes = try file.bytes(at: 8, count: headerLength, reading: "the header")
        guard let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any] else {
            throw StorageError.malformed(path: path, reason: "unreadable safetensors header")
        }
        let body = 8 + headerLength
        var entries: [String: TensorEntry] = [:]
        var starts: [(String, Int)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtypeName = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2,
                  offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= file.size - body,
                  shape.allSatisfy({ $0 >= 0 }), let count = elementCount(shape) else {
                throw StorageError.malformed(path: path, reason: "bad entry for tensor \(name)")
            }
            guard let dtype = TensorDType(rawValue: dtypeName) else {
                throw StorageError.malformed(path: path, reason: "\(name): dtype \(dtypeName) is not a weight type read here (F32, F16, BF16 are)")
            }
            guard offsets[1] - offsets[0] == count * dtype.size else {
                throw StorageError.malformed(path: path, reason: "\(name): \(offsets[1] - offsets[0]) bytes do not hold shape \(shape) of \(dtypeName)")
            }
            entries[name] = TensorEntry(dtype: dtype, shape: shape, strides: TensorEntry.contiguousStrides(shape),
                                        storageStart: body + offsets[0], storageCount: count, offset: 0)
            starts.append((name, offsets[0]))
        }
        return TensorFile(path: path, names: starts.sorted { $0.1 < $1.1 }.map(\.0), entries: entries)
    }

    /// The product of `shape`, nil when it overflows.
    private static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for extent in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            if overflow { return nil }
            count = product
        }
        return count
    }

    /// Serialises float tensors (names sorted, as PyTorch's writer does) with string metadata.
    public static func encode(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let sorted = tensors.sorted { $0.name < $1.name }
        for tensor in sorted {
            precondition(tensor.shape.reduce(1, *) == tensor.values.count, "\(tensor.name): shape does not match values")
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + 4 * tensor.values.count]]
            offset += 4 * tensor.values.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad so the data starts 8-byte aligned, as the reference writer does.
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for tensor in sorted {
            // Every platform Swift on Linux runs on is little-endian, like the format.
            tensor.values.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        return data
    }

    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(try encode(tensors, metadata: metadata), to: path)
    }
}
