import Console
import Dispatch
import Foundation
import SlideIO
import Storage
import Tiling

public struct RunOptions: Sendable {
    public var slides: String
    public var output: String
    /// 1-based shard K of N.
    public var shard: (index: Int, count: Int) = (1, 1)
    public var jobs = 1
    public var showProgress = true

    public init(slides: String, output: String) {
        self.slides = slides
        self.output = output
    }
}

public struct RunSummary: Sendable {
    public var completed = 0
    public var upToDate = 0
    public var failed: [(slide: String, stage: String, error: String)] = []
    public var blocked = 0
    public var deferred: [String] = []
}

/// What a run wrote, for `wsi report` and `wsi status`.
public struct RunDescription: Codable, Sendable {
    public struct StageInfo: Codable, Sendable {
        public var id: String
        public var kind: String
        public var scope: String
        public var output: String
    }
    public var manifest: String
    public var name: String
    public var slides: [String]
    public var stages: [StageInfo]
    public static let fileName = "run.json"
    public static let ledgerName = "ledger.sqlite"
}

/// Runs a manifest over a slide folder: per-slide stages slide by slide (J at a time), global
/// stages once, everything recorded in the ledger so a re-run skips what is done and up to date.
/// Shared by the job threads: its state is immutable and the ledger locks itself.
public final class PipelineRunner: @unchecked Sendable {
    public let manifest: Manifest
    public let options: RunOptions
    public let slides: [String]
    let ledger: Ledger

    public init(manifest: Manifest, options: RunOptions) throws {
        self.manifest = manifest
        self.options = options
        let all = try SlideDiscovery.slides(at: options.slides)
        var seen: [String: String] = [:]
        for slide in all {
            let stem = SlideDiscovery.stem(of: slide)
            if let other = seen[stem] {
                throw StageError.failed("\(slide) and \(other) would share the output folder '\(stem)'; rename one")
            }
            seen[stem] = slide
        }
        slides = all.filter { Self.shard(of: $0, relativeTo: options.slides, count: options.shard.count) == options.shard.index - 1 }
        try FileManager.default.createDirectory(atPath: options.output, withIntermediateDirectories: true)
        ledger = try Ledger(path: options.output + "/" + RunDescription.ledgerName)
    }

    /// A slide's shard from a hash of its path below the slide folder: stable when slides are
    /// added or the folder is mounted elsewhere.
    public static func shard(of slide: String, relativeTo root: String, count: Int) -> Int {
        let relative = slide.hasPrefix(root) ? String(slide.dropFirst(root.count)) : slide
        return Int(fnv1a(relative.trimmingCharacters(in: CharacterSet(charactersIn: "/"))) % UInt64(max(1, count)))
    }

    public func run() throws -> RunSummary {
        let description = RunDescription(manifest: manifest.path, name: manifest.name, slides: slides,
                                         stages: manifest.stages.map { .init(id: $0.id, kind: $0.type.kind, scope: $0.type.scope.rawValue, output: $0.output) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if options.shard.count == 1 { try AtomicFile.write(try encoder.encode(description), to: options.output + "/" + RunDescription.fileName) }

        final class SummaryBox: @unchecked Sendable {
            var summary = RunSummary()
            let lock = NSLock()
        }
        let box = SummaryBox()
        for entry in manifest.stages {
            if entry.type.scope == .global {
                if options.shard.count > 1 {
                    box.summary.deferred.append(entry.id)
                    printError("\(entry.id): global stage, left to an unsharded 'wsi run' after all shards finish")
                    continue
                }
                record(try runItem(entry, slide: nil), into: &box.summary, entry: entry, slide: "*")
            } else {
                let counter = Counter()
                let showInner = options.showProgress && options.jobs == 1
                DispatchQueue.concurrentPerform(iterations: max(1, min(options.jobs, slides.count))) { _ in
                    while let index = counter.take(below: slides.count) {
                        let slide = slides[index]
                        let outcome: ItemOutcome
                        do { outcome = try runItem(entry, slide: slide, showProgress: showInner) } catch {
                            outcome = .failed("\(error)")
                        }
                        box.lock.lock()
                        record(outcome, into: &box.summary, entry: entry, slide: slide)
                        box.lock.unlock()
                    }
                }
            }
        }
        return box.summary
    }

    enum ItemOutcome {
        case completed(Double)
        case upToDate
        case failed(String)
        case blocked(String)
    }

    private func record(_ outcome: ItemOutcome, into summary: inout RunSummary, entry: StageEntry, slide: String) {
        let name = slide == "*" ? "" : " " + SlideDiscovery.stem(of: slide)
        switch outcome {
        case let .completed(seconds):
            summary.completed += 1
            printError(String(format: "%@%@: done in %.1f s", entry.id, name, seconds))
        case .upToDate:
            summary.upToDate += 1
        case let .failed(message):
            summary.failed.append((slide, entry.id, message))
            printError("\(entry.id)\(name): FAILED: \(message)")
        case let .blocked(reason):
            summary.blocked += 1
            printError("\(entry.id)\(name): skipped, \(reason)")
        }
    }

    /// The ledger key of a slide (global stages use "*").
    private func key(_ slide: String?) -> String { slide.map(SlideDiscovery.stem) ?? "*" }

    private func outputFolder(_ entry: StageEntry, slide: String?) -> String {
        options.output + "/" + entry.output + (slide.map { "/" + SlideDiscovery.stem(of: $0) } ?? "")
    }

    private func runItem(_ entry: StageEntry, slide: String?, showProgress: Bool? = nil) throws -> ItemOutcome {
        // Resolve inputs, and fingerprint everything this item depends on.
        var inputs: [String: [String]] = [:]
        var fingerprint: [String] = []
        if let slide {
            let size = ((try? FileManager.default.attributesOfItem(atPath: slide))?[.size] as? NSNumber)?.int64Value ?? -1
            fingerprint.append("slide:\(size):\(modificationTime(slide))")
        }
        for (name, source) in entry.inputs.sorted(by: { $0.key < $1.key }) {
            switch source {
            case var .path(path):
                // A folder of per-slide outputs (another run's stage folder) gives a per-slide stage
                // this slide's sub-folder.
                // this slide's sub-folder, and a global stage every slide's.
                let perSlide = (slide.map { [$0] } ?? slides).map { path + "/" + SlideDiscovery.stem(of: $0) }
                    .filter { FileManager.default.fileExists(atPath: $0) }
                if slide != nil, let own = perSlide.first { path = own }
                let modified = modificationTime(path)
                inputs[name] = slide == nil && !perSlide.isEmpty ? perSlide : [path]
                fingerprint.append("\(name)=path:\(path):\(modified)")
            case let .stage(id):
                let upstream = manifest.stages.first { $0.id == id }!
                let needed: [String?] = upstream.type.scope == .global ? [nil] : (slide.map { [$0] } ?? slides)
                var paths: [String] = []
                for item in needed {
                    guard let row = try ledger.row(slide: key(item), stage: id), row.status == .done else {
                        if slide != nil || upstream.type.scope == .global {
                            return .blocked("waiting for \(id)\(item.map { " on " + SlideDiscovery.stem(of: $0) } ?? "") (not done)")
                        }
                        continue  // a global stage reads the slides whose upstream succeeded
                    }
                    paths.append(outputFolder(upstream, slide: item))
                    fingerprint.append("\(name)=\(id)/\(key(item)):\(row.parametersHash):\(row.inputKey):\(row.startedAt)")
                }
                guard !paths.isEmpty else { return .blocked("\(id) has no finished output to read") }
                inputs[name] = paths
            }
        }
        let parameters = entry.parameters.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let parametersHash = String(fnv1a(([entry.type.kind] + parameters).joined(separator: ";")), radix: 16)
        let inputKey = String(fnv1a(fingerprint.joined(separator: ";")), radix: 16)
        let final = outputFolder(entry, slide: slide)

        let previous = try ledger.row(slide: key(slide), stage: entry.id)
        let sameWork = previous?.parametersHash == parametersHash && previous?.inputKey == inputKey
        if let previous, previous.status == .done, sameWork, FileManager.default.fileExists(atPath: final) {
            return .upToDate
        }

        // Work happens in a hidden sibling folder, renamed into place only on success. A resumable
        // stage continues a partial folder only if it was started with the same parameters and inputs.
        let partial = (final as NSString).deletingLastPathComponent + "/." + (final as NSString).lastPathComponent + ".partial"
        if !entry.type.resumesPartialOutput || !sameWork { try? FileManager.default.removeItem(atPath: partial) }
        try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true)
        try ledger.markRunning(slide: key(slide), stage: entry.id, parametersHash: parametersHash, inputKey: inputKey)
        let start = Date()
        let context = StageContext(slide: slide, slides: slides, output: partial, inputs: inputs,
                                   showProgress: showProgress ?? options.showProgress)
        do {
            try entry.stage.run(context)
            try? FileManager.default.removeItem(atPath: final)
            try FileManager.default.moveItem(atPath: partial, toPath: final)
            let seconds = Date().timeIntervalSince(start)
            try ledger.markDone(slide: key(slide), stage: entry.id, outputs: final, seconds: seconds)
            return .completed(seconds)
        } catch {
            let seconds = Date().timeIntervalSince(start)
            try ledger.markFailed(slide: key(slide), stage: entry.id, error: "\(error)", seconds: seconds)
            if !entry.type.resumesPartialOutput { try? FileManager.default.removeItem(atPath: partial) }
            return .failed("\(error)")
        }
    }
}

/// FNV-1a, 64-bit: stable across runs and machines (Swift's Hasher is seeded per process).
func fnv1a(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01B3
    }
    return hash
}
