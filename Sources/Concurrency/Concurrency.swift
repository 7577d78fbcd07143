import Foundation

/// Disjoint per-index result slots filled by worker threads. Raw storage rather than an array:
/// concurrent writes to distinct elements of one Swift array would trip exclusivity checks.
public final class Slots<T>: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<T?>
    public let count: Int
    public init(count: Int) {
        self.count = count
        storage = .allocate(capacity: count)
        storage.initialize(repeating: nil, count: count)
    }
    deinit {
        storage.deinitialize(count: count)
        storage.deallocate()
    }
    public subscript(i: Int) -> T? {
        get { storage[i] }
        set { storage[i] = newValue }
    }
    public var values: [T?] { Array(UnsafeBufferPointer(start: storage, count: count)) }
}

/// Hands out indices 0, 1, 2, … to competing threads.
public final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    public init() {}
    public func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}

/// A raw pointer handed to worker threads that write disjoint ranges.
public struct UncheckedPointer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

/// The first error any worker thread met.
public final class FailureSlot: @unchecked Sendable {
    private let lock = NSLock()
    public private(set) var error: Error?
    public init() {}
    public func record(_ error: Error) {
        lock.lock()
        if self.error == nil { self.error = error }
        lock.unlock()
    }
}
