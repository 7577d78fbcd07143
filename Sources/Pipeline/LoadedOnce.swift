import Foundation

/// A model (or anything loaded from files) kept for all the slides of a run: loading it and
/// warming its buffers per slide costs more than a small slide. It is loaded again when one of
/// its files changes. Its buffers are not shareable, so slides take turns.
final class LoadedOnce<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var key: String?
    private var value: Value?

    func with<T>(files: [String], load: () throws -> Value, _ body: (inout Value) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        let current = files.map { "\($0):\(modificationTime($0))" }.joined(separator: "|")
        var loaded: Value
        if key == current, let cached = value {
            loaded = cached
        } else {
            loaded = try load()
            key = current
        }
        defer { value = loaded }
        return try body(&loaded)
    }
}
