import Foundation

/// Element types of the weight files this project reads; every one is widened to Float32.
public enum TensorDType: String, Sendable, Equatable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"

    public var size: Int { self == .f32 ? 4 : 2 }
}

/// Where one tensor's values lie in a weight file. `strides` and `offset` count elements, as
/// PyTorch's storage views do; safetensors tensors are always contiguous.
public struct TensorEntry: Sendable, Equatable {
    public var dtype: TensorDType
    public var shape: [Int]
    public var strides: [Int]
    /// Byte position of the storage's element 0 in the file.
    public var storageStart: Int
    /// Elements in the storage (bounds the view).
    public var storageCount: Int
    /// First element of the view inside the storage.
    public var offset: Int

    public var count: Int { shape.reduce(1, *) }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var step = 1
        for axis in shape.indices.reversed() { strides[axis] = step; step *= shape[axis] }
        return strides
    }
}

/// The tensors of a weight file, indexed without reading their values: a tensor is read on
/// request straight into the caller's memory, so loading a model never holds a second full copy
/// of its weights (the peak is the model plus one tensor's bytes).
public struct TensorFile: Sendable {
    public let path: String
    /// In the file's own order.
    public let names: [String]
    public let entries: [String: TensorEntry]

    public init(path: String, names: [String], entries: [String: TensorEntry]) {
        self.path = path
        self.names = names
        self.entries = entries
    }

    /// A safetensors file or a PyTorch checkpoint (`.bin`, `.pth`, `.pt`: a zip archive), told
    /// apart by their first bytes rather than the extension.
    public static func open(_ path: String) throws -> TensorFile {
        let head = try FileReader(path: path).bytes(at: 0, count: 4, reading: "the file's signature")
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return try PyTorchCheckpoint.index(path: path) }
        do {
            return try Safetensors.index(path: path)
        } catch {
            // A safetensors header length may start with 0x80 too; only a file that is not one
            // and opens as a pickle's PROTO is named as PyTorch's legacy format.
            guard head.count == 4, head[0] == 0x80, (2...5).contains(head[1]) else { throw error }
            throw StorageError.malformed(path: path, reason: "a bare pickle (PyTorch's legacy, pre-1.6 format) is not read; "
                + "re-save it with torch.save (zip format) or as safetensors")
        }
    }

    /// Reads `name`'s values, widened to Float32 and laid out contiguously, into `destination`
    /// (room for `entries[name].count` values).
    public func read(_ name: String, into destination: UnsafeMutablePointer<Float>) throws {
        guard let entry = entries[name] else { throw StorageError.malformed(path: path, reason: "no tensor named \(name)") }
        let count = entry.count
        guard count > 0 else { return }
        // The span of storage elements the view touches.
        var last = entry.offset
        for (extent, stride) in zip(entry.shape, entry.strides) { last += (extent - 1) * stride }
        guard entry.offset >= 0, entry.strides.allSatisfy({ $0 >= 0 }), last < entry.storageCount else {
            throw StorageError.malformed(path: path, reason: "\(name): its view reaches past its storage")
        }
        let span = last - entry.offset + 1
        let bytes = try FileReader(path: path).bytes(at: entry.storageStart + entry.offset * entry.dtype.size,
                                                     count: span * entry.dtype.size, reading: name)
        let contiguous = entry.strides == TensorEntry.contiguousStrides(entry.shape)
        bytes.withUnsafeBytes { raw in
            func element(_ i: Int) -> Float {
                switch entry.dtype {
                case .f32: return raw.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                case .bf16: return Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
                case .f16: return Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            }
            if contiguous {
                for i in 0..<count { destination[i] = element(i) }
                return
            }
            var index = [Int](repeating: 0, count: entry.shape.count)
            for i in 0..<count {
                var source = 0
                for axis in index.indices { source += index[axis] * entry.strides[axis] }
                destination[i] = element(source)
                var axis = index.count - 1
                while axis >= 0 {
                    index[axis] += 1
                    if index[axis] < entry.shape[axis] { break }
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
    }

    public func read(_ name: String) throws -> [Float] {
        let count = entries[name]?.count ?? 0
        var values = [Float](repeating: 0, count: count)
        try values.withUnsafeMutableBufferPointer { try read(name, into: $0.baseAddress!) }
        return values
    }
}

/// Positioned reads of a file, each checked against its size.
struct FileReader {
    let path: String
    let size: Int

    init(path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw StorageError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw StorageError.cannotOpen(path: path, reason: "not a regular file") }
        self.path = path
        size = Int(info.st_size)
    }

    func bytes(at offset: Int, count: Int, reading what: String) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw StorageError.malformed(path: path, reason: "\(what): \(count) bytes at \(offset) lie past the end of the file (\(size) bytes)")
        }
        let descriptor = Glibc.open(path, O_RDONLY)
        guard descriptor >= 0 else { throw StorageError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { throw StorageError.malformed(path: path, reason: "\(what): the file ended early") }
            done += got
        }
        return buffer
    }
}
