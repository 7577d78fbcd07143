import CHDF5
import Foundation

/// A numeric matrix as stored in an HDF5 dataset, row-major.
public struct Matrix<Element> {
    public var rows: Int
    public var columns: Int
    public var values: [Element]

    public init(rows: Int, columns: Int, values: [Element]) {
        precondition(values.count == rows * columns, "matrix shape does not match its values")
        self.rows = rows
        self.columns = columns
        self.values = values
    }
}

public enum HDF5Attribute: Equatable {
    case int(Int64)
    case double(Double)
    case string(String)
    /// One-dimensional arrays, as CLAM writes `downsample` (2 floats) and `level_dim` (2 ints).
    case ints([Int64])
    case doubles([Double])
}

/// Writes 2-D datasets with scalar attributes: enough for CLAM-style coordinate and score files.
///
/// Use through `AtomicFile.produce` so a reader never sees a half-written file.
public final class HDF5Writer {
    private let path: String
    private var file: hid_t

    public init(path: String) throws {
        chdf5_silence_errors()
        self.path = path
        file = H5Fcreate(path, chdf5_acc_trunc(), chdf5_p_default(), chdf5_p_default())
        guard file >= 0 else { throw StorageError.cannotCreate(path: path, reason: "H5Fcreate failed") }
    }

    deinit { if file >= 0 { H5Fclose(file) } }

    public func write(_ name: String, _ matrix: Matrix<Int64>, attributes: [String: HDF5Attribute] = [:]) throws {
        try write(name, rows: matrix.rows, columns: matrix.columns, type: chdf5_native_int64(), attributes: attributes) { dataset, type in
            matrix.values.withUnsafeBytes { H5Dwrite(dataset, type, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), $0.baseAddress) }
        }
    }

    public func write(_ name: String, _ matrix: Matrix<Float>, attributes: [String: HDF5Attribute] = [:]) throws {
        try write(name, rows: matrix.rows, columns: matrix.columns, type: chdf5_native_float(), attributes: attributes) { dataset, type in
            matrix.values.withUnsafeBytes { H5Dwrite(dataset, type, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), $0.baseAddress) }
        }
    }

    public func close() throws {
        guard file >= 0 else { return }
        let status = H5Fclose(file)
        file = -1
        guard status >= 0 else { throw StorageError.writeFailed(path: path, reason: "H5Fclose failed") }
    }

    private func write(_ name: String, rows: Int, columns: Int, type: hid_t,
                       attributes: [String: HDF5Attribute], body: (hid_t, hid_t) -> herr_t) throws {
        var dims: [hsize_t] = [hsize_t(rows), hsize_t(columns)]
        let space = H5Screate_simple(2, &dims, nil)
        defer { H5Sclose(space) }
        let dataset = H5Dcreate2(file, name, type, space, chdf5_p_default(), chdf5_p_default(), chdf5_p_default())
        guard dataset >= 0 else { throw StorageError.writeFailed(path: path, reason: "cannot create dataset \(name)") }
        defer { H5Dclose(dataset) }
        if rows * columns > 0 {
            guard body(dataset, type) >= 0 else { throw StorageError.writeFailed(path: path, reason: "cannot write dataset \(name)") }
        }
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
            try setAttribute(on: dataset, key, value)
        }
    }

    private func setAttribute(on object: hid_t, _ name: String, _ value: HDF5Attribute) throws {
        var length: [hsize_t] = [0]
        switch value {
        case let .ints(values): length[0] = hsize_t(values.count)
        case let .doubles(values): length[0] = hsize_t(values.count)
        default: break
        }
        let space = length[0] > 0 ? H5Screate_simple(1, &length, nil) : H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        var status: herr_t = -1
        switch value {
        case let .ints(values):
            let attribute = H5Acreate2(object, name, chdf5_native_int64(), space, chdf5_p_default(), chdf5_p_default())
            defer { H5Aclose(attribute) }
            status = attribute < 0 ? -1 : values.withUnsafeBytes { H5Awrite(attribute, chdf5_native_int64(), $0.baseAddress) }
        case let .doubles(values):
            let attribute = H5Acreate2(object, name, chdf5_native_double(), space, chdf5_p_default(), chdf5_p_default())
            defer { H5Aclose(attribute) }
            status = attribute < 0 ? -1 : values.withUnsafeBytes { H5Awrite(attribute, chdf5_native_double(), $0.baseAddress) }
        case .int(var v):
            let attribute = H5Acreate2(object, name, chdf5_native_int64(), space, chdf5_p_default(), chdf5_p_default())
            defer { H5Aclose(attribute) }
            status = attribute < 0 ? -1 : H5Awrite(attribute, chdf5_native_int64(), &v)
        case .double(var v):
            let attribute = H5Acreate2(object, name, chdf5_native_double(), space, chdf5_p_default(), chdf5_p_default())
            defer { H5Aclose(attribute) }
            status = attribute < 0 ? -1 : H5Awrite(attribute, chdf5_native_double(), &v)
        case .string(let v):
            let type = H5Tcopy(chdf5_c_s1())
            defer { H5Tclose(type) }
            let bytes = Array(v.utf8)
            H5Tset_size(type, max(1, bytes.count))
            let attribute = H5Acreate2(object, name, type, space, chdf5_p_default(), chdf5_p_default())
            defer { H5Aclose(attribute) }
            let padded = bytes.isEmpty ? [UInt8(0)] : bytes
            status = attribute < 0 ? -1 : padded.withUnsafeBytes { H5Awrite(attribute, type, $0.baseAddress) }
        }
        guard status >= 0 else { throw StorageError.writeFailed(path: path, reason: "cannot write attribute \(name)") }
    }
}

/// Reads what `HDF5Writer` writes (and CLAM's coordinate files).
public final class HDF5Reader {
    /// 2^31 values (8 GiB of floats): far above a slide's bag (100,000 tiles × 1,536 features).
    public static let maximumElements = 1 << 31
    /// Attributes are metadata: a few numbers (CLAM's are pairs).
    public static let maximumAttributeElements = 4096
    private let path: String
    private let file: hid_t

    public init(path: String) throws {
        chdf5_silence_errors()
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else {
            throw StorageError.cannotOpen(path: path, reason: "no such file")
        }
        file = H5Fopen(path, chdf5_acc_rdonly(), chdf5_p_default())
        guard file >= 0 else { throw StorageError.cannotOpen(path: path, reason: "not an HDF5 file") }
    }

    deinit { H5Fclose(file) }

    public func int64Matrix(_ name: String) throws -> Matrix<Int64> {
        try read(name, type: chdf5_native_int64(), zero: Int64(0))
    }

    public func floatMatrix(_ name: String) throws -> Matrix<Float> {
        try read(name, type: chdf5_native_float(), zero: Float(0))
    }

    public func attribute(_ name: String, of datasetName: String) throws -> HDF5Attribute {
        let dataset = try openDataset(datasetName)
        defer { H5Dclose(dataset) }
        let attribute = H5Aopen(dataset, name, chdf5_p_default())
        guard attribute >= 0 else { throw StorageError.malformed(path: path, reason: "\(datasetName) has no attribute \(name)") }
        defer { H5Aclose(attribute) }
        let type = H5Aget_type(attribute)
        defer { H5Tclose(type) }
        let space = H5Aget_space(attribute)
        defer { H5Sclose(space) }
        // A buffer for every element: reading an array into one scalar would write past it.
        let elements = Int(H5Sget_simple_extent_npoints(space))
        guard (1...Self.maximumAttributeElements).contains(elements) else {
            throw StorageError.malformed(path: path, reason: "attribute \(name) of \(datasetName) holds \(elements) values")
        }
        switch H5Tget_class(type) {
        case H5T_INTEGER:
            var v = [Int64](repeating: 0, count: elements)
            guard H5Aread(attribute, chdf5_native_int64(), &v) >= 0 else { break }
            return elements == 1 ? .int(v[0]) : .ints(v)
        case H5T_FLOAT:
            var v = [Double](repeating: 0, count: elements)
            guard H5Aread(attribute, chdf5_native_double(), &v) >= 0 else { break }
            return elements == 1 ? .double(v[0]) : .doubles(v)
        case H5T_STRING where elements == 1 && H5Tis_variable_str(type) > 0:
            // h5py writes Python strings as variable-length: HDF5 allocates the text.
            var text: UnsafeMutablePointer<CChar>?
            guard H5Aread(attribute, type, &text) >= 0, let text else { break }
            defer { H5free_memory(text) }
            return .string(String(cString: text))
        case H5T_STRING where elements == 1:
            let size = H5Tget_size(type)
            var bytes = [UInt8](repeating: 0, count: size + 1)
            guard H5Aread(attribute, type, &bytes) >= 0 else { break }
            let text = bytes.prefix { $0 != 0 }
            return .string(String(decoding: text, as: UTF8.self))
        default:
            break
        }
        throw StorageError.malformed(path: path, reason: "cannot read attribute \(name) of \(datasetName)")
    }

    private func openDataset(_ name: String) throws -> hid_t {
        let dataset = H5Dopen2(file, name, chdf5_p_default())
        guard dataset >= 0 else { throw StorageError.malformed(path: path, reason: "no dataset \(name)") }
        return dataset
    }

    private func read<T>(_ name: String, type: hid_t, zero: T) throws -> Matrix<T> {
        let dataset = try openDataset(name)
        defer { H5Dclose(dataset) }
        let space = H5Dget_space(dataset)
        defer { H5Sclose(space) }
        guard H5Sget_simple_extent_ndims(space) == 2 else {
            throw StorageError.malformed(path: path, reason: "dataset \(name) is not 2-D")
        }
        var dims: [hsize_t] = [0, 0]
        H5Sget_simple_extent_dims(space, &dims, nil)
        // A file may declare any extent (HDF5 allocates chunks lazily): refuse what cannot be a bag,
        // a coordinate list or a score table before allocating for it.
        let (count, overflow) = Int(clamping: dims[0]).multipliedReportingOverflow(by: Int(clamping: dims[1]))
        guard !overflow, count <= Self.maximumElements else {
            throw StorageError.malformed(path: path, reason: "dataset \(name) is \(dims[0])×\(dims[1]), more than the \(Self.maximumElements) values read at once")
        }
        let rows = Int(dims[0]), columns = Int(dims[1])
        var values = [T](repeating: zero, count: count)
        if !values.isEmpty {
            let status = values.withUnsafeMutableBytes {
                H5Dread(dataset, type, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), $0.baseAddress)
            }
            guard status >= 0 else { throw StorageError.malformed(path: path, reason: "cannot read dataset \(name)") }
        }
        return Matrix(rows: rows, columns: columns, values: values)
    }
}
