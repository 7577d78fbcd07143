import Foundation

/// Keeps two processes from writing one output folder at once. An unsharded run holds the
/// folder alone; shards of one run (disjoint slides) share it. The lock is the kernel's
/// (`flock`), so a killed holder releases it; the file only says who holds it, for the message.
final class RunLock {
    static let fileName = ".wsi.lock"
    private let descriptor: Int32

    init(outputRoot: String, shared: Bool) throws {
        let path = outputRoot + "/" + Self.fileName
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw StageError.failed("\(path): cannot create the run lock: \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            throw StageError.failed("\(outputRoot) is in use by another wsi process"
                                    + (holder.isEmpty ? "" : " (\(holder))") + "; wait for it to finish or stop it, then run again")
        }
        let note = "pid \(getpid()): " + CommandLine.arguments.joined(separator: " ") + ", started " + ISO8601DateFormatter().string(from: Date())
        if ftruncate(descriptor, 0) == 0 { _ = note.withCString { write(descriptor, $0, strlen($0)) } }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
