internal import CMPI
import Console
import Foundation

public enum ClusterError: ExitStatusError, CustomStringConvertible, Equatable {
    case mpi(call: String, message: String)
    /// Another rank failed at a point where every rank checks in; its own message names the cause.
    case peerFailed(what: String)
    case mismatch(String)
    /// Ranks started with other arguments than the leader's would train on the leader's data
    /// and settings while believing their own.
    case differentCommand(rank: Int, option: String, mine: String, leaders: String)

    public var exitStatus: Int32 {
        if case .differentCommand = self { return 2 }
        return 1
    }

    public var description: String {
        switch self {
        case let .mpi(call, message): return "\(call) failed: \(message)"
        case let .peerFailed(what): return "another rank failed while \(what) (its message says why)"
        case let .mismatch(message): return message
        case let .differentCommand(rank, option, mine, leaders):
            return "rank \(rank) was started with \(option) \(mine), rank 0 with \(option) \(leaders): start every rank with the same command"
        }
    }
}

/// The processes of one data-parallel job and the collectives they share.
///
/// A process started by `mpirun` or `srun` joins the job's MPI world; any other process is a
/// group of one whose collectives do nothing, so a plain run never touches MPI. Every collective
/// names what it waits for and gives up after `timeout` seconds: a rank that died or hangs ends
/// the whole job with that message instead of leaving the others waiting for ever.
public final class ProcessGroup: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let timeout: Double
    private let world: OpaquePointer?  // MPI_Comm

    public var isLeader: Bool { rank == 0 }

    /// One process, no MPI.
    public static let single = ProcessGroup(rank: 0, size: 1, timeout: 0, world: nil)

    private init(rank: Int, size: Int, timeout: Double, world: OpaquePointer?) {
        self.rank = rank
        self.size = size
        self.timeout = timeout
        self.world = world
    }

    /// The environment variables launchers set for each rank (Open MPI's mpirun; srun with PMIx or PMI-2).
    static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"]

    /// Joins the MPI job this process was launched into, or returns `single`.
    /// `WSI_COLLECTIVE_TIMEOUT` (seconds, default 600) bounds every wait for the other ranks.
    public static func join(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ProcessGroup {
        guard launcherVariables.contains(where: { environment[$0] != nil }) else { return single }
        let timeout = try environment["WSI_COLLECTIVE_TIMEOUT"].map { text -> Double in
            guard let value = Double(text), value > 0 else {
                throw ClusterError.mismatch("WSI_COLLECTIVE_TIMEOUT must be a positive number of seconds, got '\(text)'")
            }
            return value
        } ?? 600
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_SERIALIZED), &provided), "MPI_Init_thread")
        let world = wsi_mpi_comm_world()
        try check(MPI_Comm_set_errhandler(world, wsi_mpi_errors_return()), "MPI_Comm_set_errhandler")
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(world, &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(world, &size), "MPI_Comm_size")
        return ProcessGroup(rank: Int(rank), size: Int(size), timeout: timeout, world: world)
    }

    /// Leaves MPI; call once, before the process exits.
    public func finish() {
        guard world != nil else { return }
        MPI_Finalize()
    }

    /// Ends every rank of the job with exit status `status` (mpirun passes it on): the message
    /// first, on this rank's standard error.
    public func abort(_ message: String, status: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("rank \(rank) of \(size) ends the job: \(message)\n".utf8))
        if let world { MPI_Abort(world, status) }
        exit(status)
    }

    /// Every rank compares its command line with the leader's. mpirun's `A : B` form or a
    /// hand-written launcher can start ranks with other options, which would otherwise train
    /// silently on the leader's patches, output and settings.
    public func checkSameCommand(_ arguments: [String]) throws {
        guard size > 1 else { return }
        let leaders = try JSONDecoder().decode([String].self, from: broadcast(JSONEncoder().encode(arguments), what: "comparing the ranks' commands"))
        guard leaders != arguments else { return }
        let common = min(arguments.count, leaders.count)
        let at = (0..<common).first { arguments[$0] != leaders[$0] } ?? common
        func optionAndValue(_ words: [String]) -> (option: String, value: String) {
            let value = at < words.count ? words[at] : "(nothing)"
            if value.hasPrefix("-") { return (value, at + 1 < words.count ? words[at + 1] : "") }
            let option = words[..<min(at, words.count)].last { $0.hasPrefix("-") } ?? "argument \(at + 1)"
            return (option, value)
        }
        let (mine, theirs) = (optionAndValue(arguments), optionAndValue(leaders))
        let option = mine.option == theirs.option ? mine.option : "the arguments"
        throw ClusterError.differentCommand(rank: rank, option: option,
                                                mine: option == mine.option ? mine.value : arguments.joined(separator: " "),
                                                leaders: option == theirs.option ? theirs.value : leaders.joined(separator: " "))
    }

    // MARK: Collectives

    /// Replaces `values` on every rank by their sum over the ranks, in pieces of at most
    /// `bucket` values (MPI counts are 32-bit, and a few large messages keep latency low).
    public func sum(_ values: UnsafeMutablePointer<Float>, count: Int, bucket: Int = 1 << 24, what: String) throws {
        guard let world, size > 1 else { return }
        for start in stride(from: 0, to: count, by: bucket) {
            var request: MPI_Request? = nil
            try Self.check(MPI_Iallreduce(wsi_mpi_in_place(), values + start, Int32(min(bucket, count - start)), wsi_mpi_float(),
                                          wsi_mpi_sum(), world, &request), "MPI_Iallreduce")
            try wait(&request, what: what)
        }
    }

    public func sum(_ values: inout [Double], what: String) throws {
        guard let world, size > 1, !values.isEmpty else { return }
        try values.withUnsafeMutableBufferPointer { buffer in
            var request: MPI_Request? = nil
            try Self.check(MPI_Iallreduce(wsi_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), wsi_mpi_double(), wsi_mpi_sum(),
                                          world, &request), "MPI_Iallreduce")
            try wait(&request, what: what)
        }
    }

    /// Copies the leader's `values` to every rank.
    public func broadcast(_ values: UnsafeMutablePointer<Float>, count: Int, what: String) throws {
        guard let world, size > 1 else { return }
        let bucket = 1 << 24
        for start in stride(from: 0, to: count, by: bucket) {
            var request: MPI_Request? = nil
            try Self.check(MPI_Ibcast(values + start, Int32(min(bucket, count - start)), wsi_mpi_float(), 0, world, &request), "MPI_Ibcast")
            try wait(&request, what: what)
        }
    }

    /// `root`'s `message` on every rank (the others pass anything). `patient` waits without
    /// the timeout: a follower waiting for its next job while the leader tiles for an hour is
    /// not a hang (and the launcher ends it if the leader dies).
    public func broadcast(_ message: Data, from root: Int = 0, what: String, patient: Bool = false) throws -> Data {
        guard let world, size > 1 else { return message }
        let sending = rank == root
        var length = Int64(sending ? message.count : 0)
        var request: MPI_Request? = nil
        try Self.check(MPI_Ibcast(&length, 1, wsi_mpi_int64(), Int32(root), world, &request), "MPI_Ibcast")
        try wait(&request, what: what, patient: patient)
        guard length <= Int64(Int32.max) else { throw ClusterError.mismatch("a message of \(length) bytes while \(what) is more than MPI sends at once") }
        var bytes = sending ? [UInt8](message) : [UInt8](repeating: 0, count: Int(length))
        try bytes.withUnsafeMutableBytes { buffer in
            var request: MPI_Request? = nil
            try Self.check(MPI_Ibcast(buffer.baseAddress, Int32(buffer.count), wsi_mpi_byte(), Int32(root), world, &request), "MPI_Ibcast")
            try wait(&request, what: what)
        }
        return Data(bytes)
    }

    /// Every rank learns whether every rank succeeded: a rank's own failure is rethrown as it is,
    /// another rank's becomes `peerFailed`. Use it wherever ranks could otherwise diverge (one
    /// throws, the others go on to a collective and wait for it).
    public func agree<Value>(_ outcome: Result<Value, Error>, what: String) throws -> Value {
        var failed = [outcome.isFailure ? 1.0 : 0]
        try sum(&failed, what: what)
        let value = try outcome.get()
        if failed[0] > 0 { throw ClusterError.peerFailed(what: what) }
        return value
    }

    // MARK: Waiting

    private func wait(_ request: inout MPI_Request?, what: String, patient: Bool = false) throws {
        let started = Date()
        var done: Int32 = 0
        var polls = 0
        while true {
            try Self.check(MPI_Test(&request, &done, wsi_mpi_status_ignore()), "MPI_Test")
            if done != 0 { return }
            polls += 1
            // Spin briefly (collectives between busy ranks finish in microseconds), then sleep
            // so a waiting rank leaves its core to the ranks still computing.
            if polls > 2_000 {
                usleep(patient ? 10_000 : 100)
                if !patient, Date().timeIntervalSince(started) > timeout {
                    abort("no answer from the other ranks for \(Int(timeout)) s while \(what): a rank died or hangs "
                          + "(WSI_COLLECTIVE_TIMEOUT sets the limit)")
                }
            }
        }
    }

    private static func check(_ code: Int32, _ call: String) throws {
        guard code != MPI_SUCCESS else { return }
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        throw ClusterError.mpi(call: call, message: String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}

extension Result {
    fileprivate var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
