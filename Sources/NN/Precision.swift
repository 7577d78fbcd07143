import CDNNL
import CKernels

/// The arithmetic of matrix products. `bf16` follows autocast: operands rounded to bfloat16,
/// products accumulated in fp32, everything else (norms, softmax, GELU, reductions) in fp32.
public enum Precision: String, CaseIterable, Codable, Sendable {
    case fp32, bf16

    /// Whether this CPU multiplies bfloat16 natively (AVX-512 BF16); elsewhere bf16 would be
    /// emulated and slower than fp32.
    public static var bf16Available: Bool { ck_supports_bf16() != 0 }

    /// What to run when `requested` is asked for on a CPU that has (or lacks) native bf16, and a
    /// one-line notice when it differs.
    public static func resolve(_ requested: Precision, bf16Available: Bool = Precision.bf16Available) -> (Precision, notice: String?) {
        if requested == .bf16, !bf16Available {
            return (.fp32, "this CPU has no AVX-512 BF16: computing in fp32")
        }
        return (requested, nil)
    }
}

/// oneDNN refused to create or run a product (a shape it cannot do, or memory it could not get):
/// the item being computed fails with this error, the process goes on.
public struct LibraryRefusal: Error, CustomStringConvertible, Equatable {
    public let what: String
    public var description: String { "oneDNN refused \(what)" }
}

/// A bfloat16 matrix product through oneDNN (the library PyTorch's CPU autocast uses). As with
/// OpenBLAS, oneDNN runs single-threaded and the rows are split across `Parallel`'s threads; a
/// primitive per row count and thread is kept, since creating one costs far more than a product.
final class BF16Product {
    private struct Key: Hashable { var rows: Int, thread: Int }
    private var primitives: [Key: UnsafeMutablePointer<cdnnl_matmul>] = [:]
    private let inputs: Int
    private let outputs: Int
    private let transposedWeight: Bool
    private let hasBias: Bool
    /// GELU applied and the result written as bfloat16 (`runGELU`).
    private let gelu: Bool
    static let singleThreaded: Void = cdnnl_single_threaded()

    /// y[rows, outputs] = x[rows, inputs] · B (+ b): B is W stored [outputs, inputs] and read
    /// transposed (a Linear's forward), or stored [inputs, outputs] (its input gradient, dY · W).
    init(inputs: Int, outputs: Int, transposedWeight: Bool = true, hasBias: Bool, gelu: Bool = false) {
        self.inputs = inputs
        self.outputs = outputs
        self.transposedWeight = transposedWeight
        self.hasBias = hasBias
        self.gelu = gelu
    }

    deinit { for primitive in primitives.values { cdnnl_matmul_destroy(primitive) } }

    /// y[rows, outputs] = x[rows, inputs] · Wᵀ (+ b), with x and W as bfloat16 bits and W stored
    /// [outputs, inputs] as a PyTorch Linear weight.
    func run(rows: Int, x: UnsafePointer<UInt16>, weight: UnsafePointer<UInt16>, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) throws {
        precondition(!gelu, "a GELU product writes bfloat16: runGELU")
        try execute(rows: rows, x: x, weight: weight, bias: bias, y: UnsafeMutableRawPointer(y), outputSize: 4)
    }

    /// y = GELU(x · Wᵀ + b) as bfloat16 bits: an inference MLP's first layer writing the second
    /// layer's input, with no fp32 activation in between.
    func runGELU(rows: Int, x: UnsafePointer<UInt16>, weight: UnsafePointer<UInt16>, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<UInt16>) throws {
        precondition(gelu, "this product has no GELU")
        try execute(rows: rows, x: x, weight: weight, bias: bias, y: UnsafeMutableRawPointer(y), outputSize: 2)
    }

    private func execute(rows: Int, x: UnsafePointer<UInt16>, weight: UnsafePointer<UInt16>, bias: UnsafePointer<Float>?,
                         y: UnsafeMutableRawPointer, outputSize: Int) throws {
        _ = Self.singleThreaded
        let chunks = min(Parallel.threads, max(1, rows / 64))
        let ranges = (0..<chunks).map { (rows * $0 / chunks)..<(rows * ($0 + 1) / chunks) }
        let shape = "a bf16 matrix product of \(rows)×\(inputs)×\(outputs)"
        let chosen: [UnsafeMutablePointer<cdnnl_matmul>] = try ranges.enumerated().map { thread, range in
            let key = Key(rows: range.count, thread: thread)
            if let cached = primitives[key] { return cached }
            guard let created = cdnnl_matmul_create_with(Int64(range.count), Int64(inputs), Int64(outputs), transposedWeight ? 1 : 0, hasBias ? 1 : 0,
                                                         gelu ? 1 : 0) else { throw LibraryRefusal(what: shape) }
            primitives[key] = created
            return created
        }
        let (inputCount, outputCount) = (inputs, outputs)
        let work = UncheckedPointers(chosen)
        let succeeded = Parallel.forChunksIndexedSucceeding(chunks) { thread, _ in
            let range = ranges[thread]
            return cdnnl_matmul_run(work.values[thread], x + range.lowerBound * inputCount, weight, bias,
                                    y + range.lowerBound * outputCount * outputSize) == 1
        }
        guard succeeded else { throw LibraryRefusal(what: "to run " + shape) }
    }
}

/// dW[outputs, inputs] += dYᵀ · X in bfloat16 for a Linear layer: the output features are split
/// across threads, each band a product of dY's columns (read transposed in place) and X.
final class BF16WeightGradient {
    private struct Key: Hashable { var band: Int, rows: Int, thread: Int }
    private var primitives: [Key: UnsafeMutablePointer<cdnnl_matmul>] = [:]
    private let inputs: Int
    private let outputs: Int
    private let scratch: Buffer

    init(inputs: Int, outputs: Int) {
        self.inputs = inputs
        self.outputs = outputs
        scratch = Buffer(count: inputs * outputs)
    }

    deinit { for primitive in primitives.values { cdnnl_matmul_destroy(primitive) } }

    func accumulate(rows: Int, dy: UnsafePointer<UInt16>, x: UnsafePointer<UInt16>, into dw: UnsafeMutablePointer<Float>) throws {
        _ = BF16Product.singleThreaded
        let chunks = min(Parallel.threads, max(1, outputs / 16))
        let bands = (0..<chunks).map { (outputs * $0 / chunks)..<(outputs * ($0 + 1) / chunks) }
        let shape = "a bf16 weight gradient of \(outputs)×\(rows)×\(inputs)"
        let chosen: [UnsafeMutablePointer<cdnnl_matmul>] = try bands.enumerated().map { thread, band in
            let key = Key(band: band.count, rows: rows, thread: thread)
            if let cached = primitives[key] { return cached }
            guard let created = cdnnl_matmul_create_strided(Int64(band.count), Int64(rows), Int64(inputs), 1, Int64(outputs),
                                                            Int64(inputs), 1, Int64(inputs), 1) else { throw LibraryRefusal(what: shape) }
            primitives[key] = created
            return created
        }
        let (inputCount, partial) = (inputs, scratch.pointer)
        let work = UncheckedPointers(chosen)
        let succeeded = Parallel.forChunksIndexedSucceeding(chunks) { thread, _ in
            let band = bands[thread]
            let out = partial + band.lowerBound * inputCount
            guard cdnnl_matmul_run(work.values[thread], dy + band.lowerBound, x, nil, out) == 1 else { return false }
            let target = dw + band.lowerBound * inputCount
            for i in 0..<(band.count * inputCount) { target[i] += out[i] }
            return true
        }
        guard succeeded else { throw LibraryRefusal(what: "to run " + shape) }
    }
}

/// The primitives are only read inside the parallel region, each by its own thread.
private struct UncheckedPointers: @unchecked Sendable {
    let values: [UnsafeMutablePointer<cdnnl_matmul>]
    init(_ values: [UnsafeMutablePointer<cdnnl_matmul>]) { self.values = values }
}

/// Staging space for bfloat16 copies of activations, grown like `Buffer` and never shrunk;
/// shared as `Buffer.share` is.
final class BF16Buffer {
    private final class Storage {
        var pointer = UnsafeMutablePointer<UInt16>.allocate(capacity: 1)
        var capacity = 1
        deinit { pointer.deallocate() }
    }
    private var storage = Storage()
    var pointer: UnsafeMutablePointer<UInt16> { storage.pointer }

    func share(_ other: BF16Buffer) { storage = other.storage }

    /// Room for at least `count` values; contents are not kept when it grows.
    @discardableResult
    func reserve(_ count: Int) -> UnsafeMutablePointer<UInt16> {
        if count > storage.capacity {
            storage.pointer.deallocate()
            storage.pointer = .allocate(capacity: count)
            storage.capacity = count
        }
        return storage.pointer
    }
}

/// bfloat16 bits of `count` floats, converted in parallel.
func convertToBF16(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt16>, count: Int) {
    Parallel.forChunks(count, grain: 65536) { range in
        ck_to_bf16(x + range.lowerBound, y + range.lowerBound, range.count)
    }
}
