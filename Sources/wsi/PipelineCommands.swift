import Console
import Foundation
import Pipeline
import SlideIO

enum RunCommand: Command {
    static let name = "run"
    static let summary = "run a pipeline manifest over a slide folder (resumable, shardable)"
    static let usage = """
    Usage: wsi run MANIFEST [--slides DIR] [--out DIR] [--shard K/N] [--jobs J] [--quiet]

    Validates MANIFEST (YAML or JSON) first: any mistake is reported as file:line:column, exit 2.
    Then runs every stage; per-slide stages go slide by slide (J at a time), global stages once.
    OUT/ledger.sqlite records each slide × stage; re-running the same command skips what is done
    and up to date, retries failures and redoes what changed. --shard K/N takes a disjoint,
    deterministic share of the slides (for N scheduler array tasks writing into one OUT);
    global stages then wait for a final unsharded run. Exit status 1 if any item failed.
    Stage kinds and their parameters: 'wsi stages'.
    """

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let slides = try arguments.string("slides")
        let out = try arguments.string("out")
        let shardText = try arguments.string("shard")
        let jobs = try arguments.int("jobs", range: 1...256) ?? 1
        let quiet = arguments.flag("quiet")
        let inputs = try arguments.positionals()
        guard inputs.count == 1 else { throw UsageError("expected one MANIFEST") }
        var shard = (index: 1, count: 1)
        if let shardText {
            let parts = shardText.split(separator: "/").compactMap { Int($0) }
            guard parts.count == 2, parts[1] >= 1, (1...parts[1]).contains(parts[0]) else {
                throw UsageError("--shard must be K/N with 1 ≤ K ≤ N, got '\(shardText)'")
            }
            shard = (parts[0], parts[1])
        }
        let manifest: Manifest
        do { manifest = try Manifest.load(path: inputs[0]) } catch let error as ManifestError {
            printError("wsi run: \(error)")
            return 2
        }
        guard let slidesFolder = slides ?? manifest.slides else { throw UsageError("no slide folder: give --slides or 'slides:' in the manifest") }
        guard let outFolder = out ?? manifest.output else { throw UsageError("no output folder: give --out or 'output:' in the manifest") }
        var options = RunOptions(slides: slidesFolder, output: outFolder)
        options.shard = shard
        options.jobs = jobs
        options.showProgress = !quiet
        let runner = try PipelineRunner(manifest: manifest, options: options)
        printError("\(manifest.name): \(runner.slides.count) slides\(shard.count > 1 ? " in shard \(shard.index)/\(shard.count)" : ""), "
                   + "stages \(manifest.stages.map(\.id).joined(separator: " → ")) → \(outFolder)")
        let summary = try runner.run()
        print("\(summary.completed) done, \(summary.upToDate) already up to date, \(summary.failed.count) failed, \(summary.blocked) skipped"
              + (summary.deferred.isEmpty ? "" : ", deferred to an unsharded run: \(summary.deferred.joined(separator: ", "))"))
        for failure in summary.failed {
            print("  failed: \(failure.stage) \(failure.slide == "*" ? "" : SlideDiscovery.stem(of: failure.slide)): \(failure.error)")
        }
        return summary.failed.isEmpty ? 0 : 1
    }
}

enum StatusCommand: Command {
    static let name = "status"
    static let summary = "table of slides × stages from a run's ledger"
    static let usage = "Usage: wsi status OUT_DIR"

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let inputs = try arguments.positionals()
        guard inputs.count == 1 else { throw UsageError("expected one OUT_DIR") }
        let ledgerPath = inputs[0] + "/" + RunDescription.ledgerName
        guard FileManager.default.fileExists(atPath: ledgerPath) else { throw UsageError("\(ledgerPath): no ledger (not a run folder)") }
        let rows = try Ledger(path: ledgerPath).allRows()
        // Stages in manifest order when the run description is there, else as the ledger has them.
        let described = FileManager.default.contents(atPath: inputs[0] + "/" + RunDescription.fileName)
            .flatMap { try? JSONDecoder().decode(RunDescription.self, from: $0) }?.stages.map(\.id)
        func unique(_ values: [String]) -> [String] {
            var seen = Set<String>()
            return values.filter { seen.insert($0).inserted }
        }
        let stages = unique((described ?? []) + rows.map(\.stage)).filter { stage in rows.contains { $0.stage == stage } }
        let slides = unique(rows.map(\.slide))
        let width = max(12, (slides.map(\.count).max() ?? 0) + 2)
        print("slide".padding(toLength: width, withPad: " ", startingAt: 0) + stages.map { $0.padding(toLength: 18, withPad: " ", startingAt: 0) }.joined())
        for slide in slides {
            var line = (slide == "*" ? "(batch)" : slide).padding(toLength: width, withPad: " ", startingAt: 0)
            for stage in stages {
                let cell = rows.first { $0.slide == slide && $0.stage == stage }.map { "\($0.status.rawValue) \(String(format: "%.1fs", $0.seconds))" } ?? ""
                line += cell.padding(toLength: 18, withPad: " ", startingAt: 0)
            }
            print(line)
        }
        let failures = rows.filter { $0.status == .failed }
        for row in failures { print("\(row.stage) \(row.slide): \(row.error)") }
        print("\(rows.filter { $0.status == .done }.count) done, \(failures.count) failed, \(rows.filter { $0.status == .running }.count) running or interrupted")
        return 0
    }
}

enum ReportCommand: Command {
    static let name = "report"
    static let summary = "static index.html of a run: QC, heatmaps, labels, timings, loss curves"
    static let usage = "Usage: wsi report OUT_DIR"

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let inputs = try arguments.positionals()
        guard inputs.count == 1 else { throw UsageError("expected one OUT_DIR") }
        print("report → \(try Report.write(outputRoot: inputs[0]))")
        return 0
    }
}

enum StagesCommand: Command {
    static let name = "stages"
    static let summary = "list the stages a manifest can use, with their parameters and inputs"
    static let usage = "Usage: wsi stages"

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        guard try arguments.positionals().isEmpty else { throw UsageError("no arguments expected") }
        for stage in StageRegistry.all {
            print("\(stage.kind) (\(stage.scope.rawValue)): \(stage.summary)")
            for input in stage.inputs { print("  input \(input.name)\(input.required ? "" : " (optional)"): \(input.help)") }
            for p in stage.parameters {
                let extra = p.required ? ", required" : p.defaultValue.map { ", default \($0)" } ?? ""
                print("  \(p.name) (\(p.type.rawValue)\(extra)): \(p.help)")
            }
        }
        return 0
    }
}
