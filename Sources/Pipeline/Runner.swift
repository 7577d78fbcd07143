import Concurrency
import Console
import Dispatch
import Cluster
import Foundation
import SlideIO
import Storage
import Tiling

public struct RunOptions: Sendable {
    /// A slide file or a folder searched recursively; nil for a run of global stages only.
    public var slides: String?
    public var output: String
    /// 1-based shard K of N.
    public var shard: (index: Int, count: Int) = (1, 1)
    public var jobs = 1
    public var showProgress = true
    /// The command line adds its one stage to the run description; a manifest defines it whole.
    public var mergesDescription = false
    /// Ranks that join this run's `runsOnEveryRank` stages as followers (this process leads).
    public var group = ProcessGroup.single

    public init(slides: String?, output: String) {
        self.slides = slides
        self.output = output
    }
}

public struct RunSummary: Sendable {
    public var completed = 0
    public var upToDate = 0
    public var failed: [(slide: String, stage: String, error: String, exitStatus: Int32)] = []
    public var blocked = 0
    public var deferred: [String] = []

    /// 0 when nothing failed; 2 when a failure was the command's (an option the stage refused).
    public var exitStatus: Int32 { failed.map(\.exitStatus).max() ?? 0 }
}

/// What a run wrote, for `wsi report` and `wsi status`.
public struct RunDescription: Codable, Sendable {
    public struct StageInfo: Codable, Equatable, Sendable {
        public var id: String
        public var kind: String
        public var scope: StageScope
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
    /// The output folder with symbolic links resolved: every stage folder must lie inside it.
    private let root: String
    private let lock: RunLock

    public init(manifest: Manifest, options: RunOptions) throws {
        self.manifest = manifest
        self.options = options
        let needsSlides = manifest.stages.contains { $0.type.scope == .perSlide }
        if needsSlides, options.slides == nil {
            throw StageError.invalid("no slides: give a slide file or folder")
        }
        let all = try options.slides.map(SlideDiscovery.slides) ?? []
        if let slides = options.slides, needsSlides, all.isEmpty {
            throw StageError.invalid("no slides found in \(slides) (looked for \(SlideDiscovery.extensions.sorted().joined(separator: ", ")))")
        }
        var seen: [String: String] = [:]
        for slide in all {
            let stem = SlideDiscovery.stem(of: slide)
            if let other = seen[stem] {
                throw StageError.invalid("\(slide) and \(other) would share the output folder '\(stem)'; rename one")
            }
            seen[stem] = slide
        }
        slides = all.filter { Self.shard(of: $0, relativeTo: options.slides ?? "", count: options.shard.count) == options.shard.index - 1 }
        do {
            try FileManager.default.createDirectory(atPath: options.output, withIntermediateDirectories: true)
        } catch {
            throw StageError.failed("cannot create the output folder: \(describeError(error))")
        }
        root = URL(fileURLWithPath: options.output).resolvingSymlinksInPath().path
        lock = try RunLock(outputRoot: options.output, shared: options.shard.count > 1)
        ledger = try Ledger(path: options.output + "/" + RunDescription.ledgerName)
    }

    /// A slide's shard from a hash of its path below the slide folder: stable when slides are
    /// added or the folder is mounted elsewhere.
    public static func shard(of slide: String, relativeTo root: String, count: Int) -> Int {
        let relative = slide.hasPrefix(root) ? String(slide.dropFirst(root.count)) : slide
        return Int(fnv1a(relative.trimmingCharacters(in: CharacterSet(charactersIn: "/"))) % UInt64(max(1, count)))
    }

    public func run() throws -> RunSummary {
        if options.shard.count == 1 { try writeDescription() }

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
                let outcome: ItemOutcome
                do { outcome = try runItem(entry, slide: nil) } catch { outcome = .failed(error) }
                record(outcome, into: &box.summary, entry: entry, slide: LedgerRow.wholeBatch)
            } else {
                let counter = Counter()
                let showInner = options.showProgress && options.jobs == 1
                DispatchQueue.concurrentPerform(iterations: max(1, min(options.jobs, slides.count))) { _ in
                    while let index = counter.take(below: slides.count) {
                        let slide = slides[index]
                        let outcome: ItemOutcome
                        do { outcome = try runItem(entry, slide: slide, showProgress: showInner) } catch {
                            outcome = .failed(error)
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

    /// run.json: what the report and `wsi status` show. The command line adds to an existing one.
    private func writeDescription() throws {
        let path = options.output + "/" + RunDescription.fileName
        var description = RunDescription(manifest: manifest.path, name: manifest.name, slides: slides,
                                         stages: manifest.stages.map { .init(id: $0.id, kind: $0.type.kind, scope: $0.type.scope, output: $0.output) })
        if options.mergesDescription, let data = FileManager.default.contents(atPath: path),
           let previous = try? JSONDecoder().decode(RunDescription.self, from: data) {
            let ids = Set(description.stages.map(\.id))
            description.name = previous.name
            description.manifest = previous.manifest
            description.stages = previous.stages.filter { !ids.contains($0.id) } + description.stages
            description.slides = (previous.slides + slides.filter { !previous.slides.contains($0) })
        }
        try AtomicFile.write(try JSONFile.encode(description), to: path)
    }

    enum ItemOutcome {
        case completed(Double, note: String)
        case upToDate
        case failed(String, exitStatus: Int32)
        case blocked(String)

        static func failed(_ error: Error) -> ItemOutcome {
            .failed(describeError(error), exitStatus: (error as? ExitStatusError)?.exitStatus ?? 1)
        }
    }

    private func record(_ outcome: ItemOutcome, into summary: inout RunSummary, entry: StageEntry, slide: String) {
        let name = slide == LedgerRow.wholeBatch ? "" : " " + SlideDiscovery.stem(of: slide)
        switch outcome {
        case let .completed(seconds, note):
            summary.completed += 1
            printError(String(format: "%@%@: done in %.1f s", entry.id, name, seconds) + (note.isEmpty ? "" : ": " + note))
        case .upToDate:
            summary.upToDate += 1
        case let .failed(message, exitStatus):
            summary.failed.append((slide, entry.id, message, exitStatus))
            printError("\(entry.id)\(name): FAILED: \(message)")
        case let .blocked(reason):
            summary.blocked += 1
            printError("\(entry.id)\(name): skipped, \(reason)")
        }
    }

    /// The ledger key of a slide, or of the whole batch for a global stage.
    private func key(_ slide: String?) -> String { slide.map(SlideDiscovery.stem) ?? LedgerRow.wholeBatch }

    private func outputFolder(_ entry: StageEntry, slide: String?) -> String {
        options.output + "/" + entry.output + (slide.map { "/" + SlideDiscovery.stem(of: $0) } ?? "")
    }

    /// What an item reads and the keys its work is known by.
    private struct ResolvedItem {
        var inputs: [String: [String]]
        var parametersHash: String
        var inputKey: String
        var final: String
    }

    private enum Resolution {
        case ready(ResolvedItem)
        /// The item cannot run now (an upstream item is not done, an input folder is missing).
        case notRunnable(ItemOutcome)
    }

    /// Resolve the inputs → skip work that is up to date → run in a partial folder.
    private func runItem(_ entry: StageEntry, slide: String?, showProgress: Bool? = nil) throws -> ItemOutcome {
        let item: ResolvedItem
        switch try resolve(entry, slide: slide) {
        case let .notRunnable(outcome): return outcome
        case let .ready(resolved): item = resolved
        }
        let previous = try ledger.row(slide: key(slide), stage: entry.id)
        let sameWork = previous?.parametersHash == item.parametersHash && previous?.inputKey == item.inputKey
        if let previous, previous.status == .done, sameWork, OutputListing.stillPresent(previous.outputs, in: item.final) {
            return .upToDate
        }
        return try execute(entry, slide: slide, item, continuesPartial: sameWork, showProgress: showProgress ?? options.showProgress)
    }

    /// The item's inputs, and a fingerprint of everything it depends on: the slide, upstream
    /// items' keys, input paths and the files its parameters name.
    private func resolve(_ entry: StageEntry, slide: String?) throws -> Resolution {
        var inputs: [String: [String]] = [:]
        var fingerprint: [String] = []
        if let slide {
            let size = ((try? FileManager.default.attributesOfItem(atPath: slide))?[.size] as? NSNumber)?.int64Value ?? -1
            fingerprint.append("slide:\(size):\(modificationTime(slide))")
        }
        for (name, sources) in entry.inputs.sorted(by: { $0.key < $1.key }) {
            for source in sources {
                switch source {
                case let .path(path):
                    let chosen: [String]
                    if entry.type.inputs.first(where: { $0.name == name })?.perSlide == true {
                        guard let folders = perSlideFolders(path, slide: slide) else {
                            return .notRunnable(.failed("input '\(name)': \(path) has no folder for \(slide.map(SlideDiscovery.stem) ?? "any slide")",
                                                        exitStatus: 1))
                        }
                        chosen = folders
                    } else {
                        chosen = [path]
                    }
                    inputs[name, default: []] += chosen
                    fingerprint += chosen.map { "\(name)=path:\($0):\(modificationTime($0))" }
                case let .stage(id):
                    guard let upstream = manifest.stages.first(where: { $0.id == id }) else { continue }
                    switch try upstreamOutputs(of: upstream, for: entry, slide: slide, input: name) {
                    case let .notRunnable(outcome): return .notRunnable(outcome)
                    case let .ready(found):
                        inputs[name, default: []] += found.paths
                        fingerprint += found.keys
                    }
                }
            }
        }
        fingerprint += parameterFileKeys(entry)
        let parametersHash = String(fnv1a(entry.type.kind + ";" + entry.parameters.fingerprint(of: entry.type.parameters.filter(\.inManifest).map(\.name))), radix: 16)
        let final = outputFolder(entry, slide: slide)
        try checkContained(final)
        return .ready(ResolvedItem(inputs: inputs, parametersHash: parametersHash, inputKey: String(fnv1a(fingerprint.joined(separator: ";")), radix: 16),
                                   final: final))
    }

    private enum UpstreamOutputs {
        case ready(paths: [String], keys: [String])
        case notRunnable(ItemOutcome)
    }

    /// The finished outputs of an upstream stage this item reads: the slide's own for a
    /// per-slide item; for a global one, every slide whose upstream succeeded.
    private func upstreamOutputs(of upstream: StageEntry, for entry: StageEntry, slide: String?, input name: String) throws -> UpstreamOutputs {
        let needed: [String?] = upstream.type.scope == .global ? [nil] : (slide.map { [$0] } ?? slides)
        var paths: [String] = [], keys: [String] = []
        for item in needed {
            guard let row = try ledger.row(slide: key(item), stage: upstream.id), row.status == .done else {
                if slide != nil || upstream.type.scope == .global {
                    withdraw(entry, slide: slide)
                    return .notRunnable(.blocked("waiting for \(upstream.id)\(item.map { " on " + SlideDiscovery.stem(of: $0) } ?? "") (not done)"))
                }
                continue
            }
            paths.append(outputFolder(upstream, slide: item))
            keys.append("\(name)=\(upstream.id)/\(key(item)):\(row.parametersHash):\(row.inputKey):\(row.startedAt)")
        }
        guard !paths.isEmpty else {
            withdraw(entry, slide: slide)
            return .notRunnable(.blocked("\(upstream.id) has no finished output to read"))
        }
        return .ready(paths: paths, keys: keys)
    }

    /// Files named by parameters (labels tables, annotations, labelled patches) are inputs too:
    /// editing one redoes the work that read it.
    private func parameterFileKeys(_ entry: StageEntry) -> [String] {
        entry.type.parameters.compactMap { spec in
            guard let path = entry.parameters.string(spec.name) else { return nil }
            switch spec.type {
            case .path: break
            case let .nameOrPath(names) where !names.contains(path): break
            default: return nil
            }
            return "\(spec.name)=file:\(path):\(contentTime(path))"
        }
    }

    /// Work happens in a hidden sibling folder, renamed into place only on success. A resumable
    /// stage continues a partial folder only if it was started with the same parameters and inputs.
    private func execute(_ entry: StageEntry, slide: String?, _ item: ResolvedItem, continuesPartial: Bool, showProgress: Bool) throws -> ItemOutcome {
        let partial = PartialFolder.path(for: item.final)
        if !entry.type.resumesPartialOutput || !continuesPartial { try? FileManager.default.removeItem(atPath: partial) }
        let start = Date()
        do {
            try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true)
            try ledger.markRunning(slide: key(slide), stage: entry.id, parametersHash: item.parametersHash, inputKey: item.inputKey)
            var context = StageContext(slide: slide, slides: slides, output: partial, inputs: item.inputs, showProgress: showProgress)
            if entry.type.runsOnEveryRank { try dispatchToFollowers(entry, context: &context) }
            let note = try entry.stage.run(context)
            let listing = OutputListing.describe(partial)
            try? FileManager.default.removeItem(atPath: item.final)
            try FileManager.default.moveItem(atPath: partial, toPath: item.final)
            let seconds = Date().timeIntervalSince(start)
            try ledger.markDone(slide: key(slide), stage: entry.id, outputs: listing, seconds: seconds)
            return .completed(seconds, note: note)
        } catch {
            let seconds = Date().timeIntervalSince(start)
            let message = describeError(error)
            // A partial folder is only worth its disk space to a stage that resumes from it.
            if !entry.type.resumesPartialOutput { try? FileManager.default.removeItem(atPath: partial) }
            // A failed item has no current output: an older result must not pass for this one.
            try? FileManager.default.removeItem(atPath: item.final)
            do {
                try ledger.markFailed(slide: key(slide), stage: entry.id, error: message, seconds: seconds)
            } catch {
                return .failed(message + "; and the ledger could not record it: \(describeError(error))", exitStatus: 1)
            }
            return .failed(error)
        }
    }

    /// A stage folder given as a path holds one sub-folder per slide: this slide's for a
    /// per-slide item; for a global one, the run's slides' (every sub-folder when the run has no
    /// slides, as `wsi aggregate --predictions DIR` has not).
    private func perSlideFolders(_ path: String, slide: String?) -> [String]? {
        let exists = { (folder: String) in FileManager.default.fileExists(atPath: folder) }
        if let slide {
            let folder = path + "/" + SlideDiscovery.stem(of: slide)
            return exists(folder) ? [folder] : nil
        }
        if !slides.isEmpty {
            let folders = slides.map { path + "/" + SlideDiscovery.stem(of: $0) }.filter(exists)
            return folders.isEmpty ? nil : folders
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        let folders = names.map { path + "/" + $0 }.filter { folder in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue
        }
        return folders.isEmpty ? nil : folders
    }

    /// Removes the result of an item whose inputs are gone (its upstream failed): outputs, status
    /// and report then show no result rather than one computed from what is no longer there.
    private func withdraw(_ entry: StageEntry, slide: String?) {
        try? FileManager.default.removeItem(atPath: outputFolder(entry, slide: slide))
        try? ledger.remove(slide: key(slide), stage: entry.id)
    }

    /// Refuses a stage folder that a symbolic link places outside the output root.
    private func checkContained(_ folder: String) throws {
        var existing = URL(fileURLWithPath: folder)
        while !FileManager.default.fileExists(atPath: existing.path), existing.pathComponents.count > 1 {
            existing.deleteLastPathComponent()
        }
        let real = existing.resolvingSymlinksInPath().path
        guard real == root || real.hasPrefix(root + "/") else {
            throw StageError.failed("\(existing.path) leads outside the output folder \(options.output) (to \(real)); "
                                    + "outputs stay inside it: remove the link")
        }
    }
}

/// The files a finished item wrote (name and size; folders with their entry count), recorded in
/// the ledger so that a deleted or truncated output makes the item due again.
enum OutputListing {
    static func describe(_ folder: String) -> String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        return names.map { name in
            let path = folder + "/" + name
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return "\(name)/\t\((try? FileManager.default.contentsOfDirectory(atPath: path).count) ?? 0)" }
            return "\(name)\t\(size(path))"
        }.joined(separator: "\n")
    }

    static func stillPresent(_ listing: String, in folder: String) -> Bool {
        guard FileManager.default.fileExists(atPath: folder) else { return false }
        return listing.split(separator: "\n").allSatisfy { line in
            let parts = line.split(separator: "\t")
            guard parts.count == 2, let recorded = Int64(parts[1]) else { return false }
            let path = folder + "/" + parts[0]
            if parts[0].hasSuffix("/") {
                return ((try? FileManager.default.contentsOfDirectory(atPath: path).count).map { Int64($0) >= recorded }) ?? false
            }
            return size(path) == recorded
        }
    }

    private static func size(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? -1
    }
}

/// The shard a scheduler gave this process: a SLURM array task takes its place among the
/// array's tasks (IDs need not start at 1; SLURM_ARRAY_TASK_MIN says where they start).
public enum SchedulerShard {
    public static func fromArray(_ environment: [String: String]) throws -> (index: Int, count: Int)? {
        guard let idText = environment["SLURM_ARRAY_TASK_ID"] else { return nil }
        guard let id = Int(idText), let count = environment["SLURM_ARRAY_TASK_COUNT"].flatMap(Int.init), count >= 1 else {
            throw StageError.invalid("SLURM_ARRAY_TASK_ID=\(idText) without a usable SLURM_ARRAY_TASK_COUNT: give --shard K/N")
        }
        let first = environment["SLURM_ARRAY_TASK_MIN"].flatMap(Int.init) ?? 0
        let step = environment["SLURM_ARRAY_TASK_STEP"].flatMap(Int.init) ?? 1
        let index = (id - first) / max(step, 1)
        guard (0..<count).contains(index) else {
            throw StageError.invalid("SLURM array task \(id) is not among \(count) tasks from \(first) by \(step): give --shard K/N")
        }
        return (index + 1, count)
    }
}
