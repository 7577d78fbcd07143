import Foundation

/// A fixed-size float buffer the layers own and hand to BLAS without copies or CoW checks.
public final class Buffer: @unchecked Sendable {
    public private(set) var count: Int
    public private(set) var pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        pointer = Self.zeroed(count)
    }

    /// calloc's zeros: large blocks come as fresh pages that cost no memory until written, so a
    /// gradient buffer an inference never touches stays free (a ViT-g's is 4.5 GB).
    private static func zeroed(_ count: Int) -> UnsafeMutablePointer<Float> {
        guard let raw = calloc(max(count, 1), MemoryLayout<Float>.stride) else {
            fatalError("out of memory allocating \(count) floats")
        }
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { free(pointer) }

    /// Grows to hold at least `count` floats; contents are not kept. Layers call this at the top
    /// of `forward`, so allocation happens on the first batch only.
    public func reserve(_ count: Int) {
        guard count > self.count else { return }
        free(pointer)
        pointer = Self.zeroed(count)
        self.count = count
    }

    public func zero() { pointer.update(repeating: 0, count: count) }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    public func copy(from values: [Float]) {
        precondition(values.count == count, "copying \(values.count) values into a buffer of \(count)")
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }
}

/// A trainable tensor with its gradient. `decay` says whether AdamW's weight decay applies
/// (weights with two or more dimensions, not biases, norms or the mask token).
public final class Parameter: @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    public let value: Buffer
    public let grad: Buffer
    public var decay: Bool

    public init(_ name: String, shape: [Int], decay: Bool? = nil) {
        self.name = name
        self.shape = shape
        let count = shape.reduce(1, *)
        value = Buffer(count: count)
        grad = Buffer(count: count)
        self.decay = decay ?? (shape.count >= 2)
    }

    public var count: Int { value.count }
}
