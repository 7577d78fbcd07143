import Foundation

/// NumPy's .npy format (version 1.0) for float32 arrays, so numpy.load reads grids directly.
public enum NPY {
    public static func encode(_ values: [Float], shape: [Int]) -> Data {
        precondition(shape.reduce(1, *) == values.count, "npy shape does not match values")
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// Reads what `encode` writes (little-endian float32, C order).
    public static func decode(_ data: Data, path: String = "<memory>") throws -> (values: [Float], shape: [Int]) {
        guard data.count > 10, data.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else {
            throw StorageError.malformed(path: path, reason: "not a .npy file")
        }
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        guard data.count >= 10 + headerLength,
              let header = String(data: data.subdata(in: 10..<10 + headerLength), encoding: .ascii),
              header.contains("'<f4'"), let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw StorageError.malformed(path: path, reason: "unsupported .npy header (float32 C-order only)")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let body = data.subdata(in: (10 + headerLength)..<data.count)
        guard body.count == 4 * count else { throw StorageError.malformed(path: path, reason: "data size does not match shape") }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { _ = body.copyBytes(to: $0) }
        return (values, shape)
    }
}
