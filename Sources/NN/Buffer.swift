import Foundation

/// A fixed-size float buffer the layers own and hand to BLAS without copies or CoW checks.
public final class Buffer: @unchecked Sendable {
    /// The memory, which buffers of layers that never run at once may share (`share`).
    private final class Storage {
        var count: Int
        var pointer: UnsafeMutablePointer<Float>

        init(count: Int) {
            self.count = count
            pointer = Buffer.zeroed(count)
        }

        deinit { free(pointer) }
    }

    private var storage: Storage
    public var count: Int { storage.count }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }

    public init(count: Int) {
        storage = Storage(count: count)
    }

    /// From now on this buffer is `other`'s memory: activations of layers that never run at the
    /// same time (the blocks of a network used only for inference) need one copy between them.
    public func share(_ other: Buffer) { storage = other.storage }

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

    /// Grows to hold at least `count` floats; contents are not kept. Layers call this at the top
    /// of `forward`, so allocation happens on the first batch only.
    public func reserve(_ count: Int) {
        guard count > storage.count else { return }
        free(storage.pointer)
        storage.pointer = Self.zeroed(count)
        storage.count = count
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
    /// The optimiser's learning rate is multiplied by this: below 1 for the layers of a published
    /// encoder being adapted (layer-wise decay), 0 for a frozen one.
    public var learningRateScale: Float = 1

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
