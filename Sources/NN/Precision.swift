import CDNNL
import CKernels

/// The arithmetic of matrix products. `bf16` follows autocast: operands rounded to bfloat16,
/// products accumulated in fp32, everything else (norms, softmax, GELU, reductions) in fp32.
public enum Precision: String, CaseIterable, Sendable {
    case fp32, bf16

    /// Whether this CPU multiplies bfloat16 natively (AVX-512 BF16); elsewhere bf16 would be
    /// emulated and slower than fp32.
    public static var bf16Available: Bool { ck_supports_bf16() != 0 }

    /// What to run when `requested` is asked for here, and a one-line notice when it differs.
    public static func resolve(_ requested: Precision) -> (Precision, notice: String?) {
        if requested == .bf16, !bf16Available {
            return (.fp32, "this CPU has no AVX-512 BF16: computing in fp32")
        }
        return (requested, nil)
    }
}

/// A bfloat16 matrix product through oneDNN (the library PyTorch's CPU autocast uses). As with
/// OpenBLAS, oneDNN runs single-threaded and the rows are split across `Parallel`'s threads; a
/// primitive per row count and thread is kept, since creating one costs far more than a product.
final class BF16Product {
    private struct Key: Hashable { var rows: Int, thread: Int }
    private var primitives: [Key: UnsafeMutablePointer<cdnnl_matmul>] = [:]
    private let inputs: Int
    private let outputs: Int
    private let hasBias: Bool
    static let singleThreaded: Void = cdnnl_single_threaded()

    init(inputs: Int, outputs: Int, hasBias: Bool) {
        self.inputs = inputs
        self.outputs = outputs
        self.hasBias = hasBias
    }

    deinit { for primitive in primitives.values { cdnnl_matmul_destroy(primitive) } }

    /// y[rows, outputs] = x[rows, inputs] · Wᵀ (+ b), with x and W as bfloat16 bits and W stored
    /// [outputs, inputs] as a PyTorch Linear weight.
    func run(rows: Int, x: UnsafePointer<UInt16>, weight: UnsafePointer<UInt16>, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        _ = Self.singleThreaded
        let chunks = min(Parallel.threads, max(1, rows / 64))
        let ranges = (0..<chunks).map { (rows * $0 / chunks)..<(rows * ($0 + 1) / chunks) }
        let chosen: [UnsafeMutablePointer<cdnnl_matmul>] = ranges.enumerated().map { thread, range in
            let key = Key(rows: range.count, thread: thread)
            if let cached = primitives[key] { return cached }
            guard let created = cdnnl_matmul_create(Int64(range.count), Int64(inputs), Int64(outputs), 1, hasBias ? 1 : 0) else {
                preconditionFailure("oneDNN refused a bf16 matmul of \(range.count)×\(inputs)×\(outputs)")
            }
            primitives[key] = created
            return created
        }
        let (inputCount, outputCount) = (inputs, outputs)
        let work = UncheckedPointers(chosen)
        Parallel.forChunksIndexed(chunks) { thread, _ in
            let range = ranges[thread]
            guard cdnnl_matmul_run(work.values[thread], x + range.lowerBound * inputCount, weight, bias, y + range.lowerBound * outputCount) == 1 else {
                preconditionFailure("oneDNN bf16 matmul failed")
            }
        }
    }
}

/// The primitives are only read inside the parallel region, each by its own thread.
private struct UncheckedPointers: @unchecked Sendable {
    let values: [UnsafeMutablePointer<cdnnl_matmul>]
    init(_ values: [UnsafeMutablePointer<cdnnl_matmul>]) { self.values = values }
}

/// bfloat16 bits of `count` floats, converted in parallel.
func convertToBF16(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt16>, count: Int) {
    Parallel.forChunks(count, grain: 65536) { range in
        ck_to_bf16(x + range.lowerBound, y + range.lowerBound, range.count)
    }
}
