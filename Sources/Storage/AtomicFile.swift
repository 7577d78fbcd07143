import Foundation

/// Errors at the file-system boundary; each names the file involved.
public enum StorageError: Error, CustomStringConvertible, Equatable {
    case cannotCreate(path: String, reason: String)
    case writeFailed(path: String, reason: String)
    case cannotOpen(path: String, reason: String)
    case malformed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotCreate(path, reason): return "\(path): cannot create file: \(reason)"
        case let .writeFailed(path, reason): return "\(path): write failed: \(reason)"
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .malformed(path, reason): return "\(path): malformed file: \(reason)"
        }
    }
}

private func errnoText() -> String { String(cString: strerror(errno)) }

/// Files inside a folder that is itself published atomically (a stage's partial folder): written
/// in place, with the system's reason when that fails.
public enum PlainFile {
    public static func write(_ data: Data, to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StorageError.cannotCreate(path: path, reason: errnoText()) }
        defer { close(descriptor) }
        try data.withUnsafeBytes { try writeAll($0, to: descriptor, path: path) }
    }
}

/// Writes every byte, retrying short writes and interrupted calls; errors name `path`.
private func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32, path: String) throws {
    guard let base = bytes.baseAddress else { return }
    var offset = 0
    while offset < bytes.count {
        let n = Foundation.write(descriptor, base + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            throw StorageError.writeFailed(path: path, reason: errnoText())
        }
        offset += n
    }
}

/// A file that becomes visible under its final name only when complete.
///
/// Bytes go to a hidden temporary file in the same directory (so the final `rename` is atomic on
/// POSIX file systems); a killed process leaves at most a `.tmp` file behind, never a half-written
/// output under the real name.
public final class AtomicFile {
    public let path: String
    public let temporaryPath: String
    private var descriptor: Int32
    private var committed = false

    public init(path: String) throws {
        self.path = path
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        temporaryPath = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StorageError.cannotCreate(path: path, reason: errnoText()) }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        if !committed { unlink(temporaryPath) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(bytes, to: descriptor, path: path)
    }

    public func write(_ data: Data) throws { try data.withUnsafeBytes { try write($0) } }
    public func write(_ text: String) throws { try write(Data(text.utf8)) }
    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Overwrites bytes already written (headers whose counts are known only at the end).
    public func write(_ bytes: [UInt8], at offset: Int) throws {
        let n = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
        guard n == bytes.count else { throw StorageError.writeFailed(path: path, reason: errnoText()) }
    }

    /// Flushes to disk and moves the file under its final name.
    public func commit() throws {
        guard !committed else { return }
        guard fsync(descriptor) == 0 else { throw StorageError.writeFailed(path: path, reason: errnoText()) }
        close(descriptor)
        descriptor = -1
        guard rename(temporaryPath, path) == 0 else {
            throw StorageError.writeFailed(path: path, reason: "rename: \(errnoText())")
        }
        committed = true
    }

    /// Writes a whole file atomically in one call.
    public static func write(_ data: Data, to path: String) throws {
        let file = try AtomicFile(path: path)
        try file.write(data)
        try file.commit()
    }

    /// Lets a library that insists on opening the file itself (HDF5, libpng) write it atomically:
    /// `body` receives the temporary path, and the result is renamed into place only if it returns.
    @discardableResult
    public static func produce<Result>(_ path: String, _ body: (String) throws -> Result) throws -> Result {
        let file = try AtomicFile(path: path)
        let result = try body(file.temporaryPath)
        try file.commit()
        return result
    }
}

/// Work on a folder happens in a hidden sibling that is renamed when complete, so a killed run
/// never leaves a folder that looks finished.
public enum PartialFolder {
    public static func path(for final: String) -> String {
        (final as NSString).deletingLastPathComponent + "/." + (final as NSString).lastPathComponent + ".partial"
    }

    /// The folder `path` becomes when complete (`path` itself when it is not a partial one).
    public static func final(of path: String) -> String {
        let name = (path as NSString).lastPathComponent
        guard name.hasPrefix("."), name.hasSuffix(".partial"), name.count > ".x.partial".count - 1 else { return path }
        return (path as NSString).deletingLastPathComponent + "/" + name.dropFirst().dropLast(".partial".count)
    }
}
