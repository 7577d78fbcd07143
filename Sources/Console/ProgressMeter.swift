import Foundation

/// Progress of long work on stderr: a redrawn bar on a terminal, plain periodic lines otherwise
/// (so logs from batch schedulers stay readable).
public final class ProgressMeter: @unchecked Sendable {
    private let label: String
    private let total: Int
    private let interactive: Bool
    private let start = Date()
    private let lock = NSLock()
    private var done = 0
    private var lastDraw = Date.distantPast
    private var extra = ""
    private let enabled: Bool

    public init(_ label: String, total: Int, enabled: Bool = true) {
        self.label = label
        self.total = max(total, 0)
        self.enabled = enabled
        interactive = isatty(STDERR_FILENO) == 1
    }

    /// Marks `count` more units done; `status` replaces the free-text part (losses, etc.).
    public func advance(by count: Int = 1, status: String? = nil) {
        lock.lock()
        defer { lock.unlock() }
        done += count
        if let status { extra = status }
        let now = Date()
        let interval = interactive ? 0.1 : 5.0
        if now.timeIntervalSince(lastDraw) >= interval && done < total {
            lastDraw = now
            draw(now: now, final: false)
        }
    }

    /// A line that must be seen (a warning): printed above the bar, and even when the bar is off.
    public func note(_ message: String) {
        lock.lock()
        defer { lock.unlock() }
        let clear = interactive && enabled ? "\r\u{1B}[2K" : ""
        FileHandle.standardError.write(Data((clear + "\(label): " + message + "\n").utf8))
    }

    public func finish() {
        lock.lock()
        defer { lock.unlock() }
        draw(now: Date(), final: true)
    }

    private func draw(now: Date, final: Bool) {
        guard enabled else { return }
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let remaining = rate > 0 ? Double(total - done) / rate : 0
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let counts = "\(done)/\(total) \(String(format: "%.1f", rate))/s"
        let time = final ? "in \(Self.duration(elapsed))" : "ETA \(Self.duration(remaining))"
        let tail = extra.isEmpty ? "" : " \(extra)"
        var line: String
        if interactive {
            let width = 28
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            line = "\r\u{1B}[2K\(label) \(bar) \(counts) \(time)\(tail)"
            if final { line += "\n" }
        } else {
            line = "\(label): \(String(format: "%3.0f%%", fraction * 100)) \(counts) \(time)\(tail)\n"
        }
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "--" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
        if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return "\(s)s"
    }
}

/// Messages for the user on stderr, keeping stdout for machine-readable output.
public func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
