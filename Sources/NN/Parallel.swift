import CKernels
import COpenBLAS
import Dispatch
import Foundation

/// How the layers use the cores: OpenBLAS runs single-threaded and the layers split their own
/// work (rows of a GEMM, attention heads, normalisation rows) across threads. Many small GEMMs
/// (one per attention head) made OpenBLAS's own threads spend more time yielding than computing.
public enum Parallel {
    /// `WSI_THREADS` when set (1...1024: per-thread scratch such as attention's grows with it);
    /// otherwise the cores this process may run on, which a launcher narrows when it binds ranks
    /// to cores (mpirun gives each of two ranks one core).
    public static let threads = ProcessInfo.processInfo.environment["WSI_THREADS"].flatMap(Int.init).map { min(max(1, $0), 1024) }
        ?? allowedCores()

    private static func allowedCores() -> Int {
        let allowed = Int(ck_allowed_cores())
        return allowed > 0 ? allowed : max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// OpenBLAS's thread count is process-wide; set once, before the first GEMM.
    static let singleThreadedBLAS: Void = openblas_set_num_threads(1)

    /// Runs `body` on contiguous chunks of 0..<count, one chunk per thread, when the work is
    /// large enough (`grain` items at least per chunk) to repay the dispatch. Chunks start at
    /// multiples of `alignment`: a kernel whose bits depend on where a row falls in its tiles
    /// gives the same bits on any thread count when the alignment is a multiple of the tile.
    @inline(__always)
    public static func forChunks(_ count: Int, grain: Int = 1, alignment: Int = 1, _ body: (Range<Int>) -> Void) {
        let units = (count + alignment - 1) / alignment
        let chunks = min(threads, max(1, count / max(grain, 1)), units)
        if chunks <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedBody(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = min(count, alignment * (units * chunk / chunks))
                let end = min(count, alignment * (units * (chunk + 1) / chunks))
                box.body(start..<end)
            }
        }
    }

    /// Like `forChunks`, also passing the chunk's index (for per-thread scratch space).
    public static func forChunksIndexed(_ count: Int, _ body: (Int, Range<Int>) -> Void) {
        let chunks = min(threads, max(1, count))
        withoutActuallyEscaping(body) { body in
            let box = UncheckedIndexedBody(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                box.body(chunk, (count * chunk / chunks)..<(count * (chunk + 1) / chunks))
            }
        }
    }

    /// Like `forChunksIndexed` for work that can fail inside the parallel region (a library call
    /// returning an error code): every chunk runs, and the result says whether all succeeded.
    public static func forChunksIndexedSucceeding(_ count: Int, _ body: (Int, Range<Int>) -> Bool) -> Bool {
        let chunks = min(threads, max(1, count))
        var succeeded = [Bool](repeating: true, count: chunks)
        succeeded.withUnsafeMutableBufferPointer { flags in
            let results = UncheckedFlags(flags.baseAddress!)
            forChunksIndexed(count) { chunk, range in results.pointer[chunk] = body(chunk, range) }
        }
        return !succeeded.contains(false)
    }
}

/// Each chunk writes only its own flag.
private struct UncheckedFlags: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Bool>
    init(_ pointer: UnsafeMutablePointer<Bool>) { self.pointer = pointer }
}

/// The closures write disjoint ranges of buffers the caller owns; Sendable checking cannot see that.
private struct UncheckedBody: @unchecked Sendable {
    let body: (Range<Int>) -> Void
    init(_ body: @escaping (Range<Int>) -> Void) { self.body = body }
}

private struct UncheckedIndexedBody: @unchecked Sendable {
    let body: (Int, Range<Int>) -> Void
    init(_ body: @escaping (Int, Range<Int>) -> Void) { self.body = body }
}
