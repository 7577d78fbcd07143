import Cluster
import Console
import Foundation
import Pipeline
import Storage

struct RunCommand: DeclaredCommand {
    static let slides = Option<String?>("slides", .path, manifest: false, placeholder: "DIR", help: "slide folder (overrides the manifest's 'slides')")
    static let out = Option<String?>("out", .text, manifest: false, placeholder: "DIR", help: "output folder (overrides the manifest's 'output')")
    static let shard = Option<String?>("shard", .text, manifest: false, placeholder: "K/N", help: "run shard K of N")
    static let spec = CommandSpec(
        name: "run", summary: "run a pipeline manifest over a slide folder (resumable, shardable)", synopsis: "MANIFEST [options]",
        details: """
        Validates MANIFEST (YAML or JSON) first: any mistake is reported as file:line:column, exit 2.
        Then runs every stage; per-slide stages go slide by slide (J at a time), global stages once.
        OUT/ledger.sqlite records each slide × stage; re-running the same command skips what is done
        and up to date, retries failures and redoes what changed. --shard K/N takes a disjoint,
        deterministic share of the slides (for N scheduler array tasks writing into one OUT; a
        SLURM array task takes its share without it); global stages then wait for a final
        unsharded run. Under mpirun/srun, pretraining runs data-parallel on every rank and
        rank 0 runs the rest. Exit status 1 if any item failed.
        Stage kinds and their parameters: 'wsi stages'.
        """,
        options: [slides.spec, out.spec, shard.spec, StageCommandLine.jobs.spec, StageCommandLine.quiet.spec])
    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        let (values, inputs) = try Self.spec.parse(&arguments)
        guard inputs.count == 1 else { throw UsageError("expected one MANIFEST") }
        var shard = (index: 1, count: 1)
        if let text = values[Self.shard] {
            let parts = text.split(separator: "/").map { Int($0) }
            guard parts.count == 2, let k = parts[0], let n = parts[1], n >= 1, (1...n).contains(k) else {
                throw UsageError("--shard must be K/N with 1 ≤ K ≤ N, got '\(text)'")
            }
            shard = (k, n)
        }
        let manifest = try Manifest.load(path: inputs[0])
        guard let slides = values[Self.slides] ?? manifest.slides else { throw UsageError("no slide folder: give --slides or 'slides:' in the manifest") }
        guard let out = values[Self.out] ?? manifest.output else { throw UsageError("no output folder: give --out or 'output:' in the manifest") }
        var options = RunOptions(slides: slides, output: out)
        options.shard = shard
        options.jobs = values[StageCommandLine.jobs]
        options.showProgress = !values[StageCommandLine.quiet]
        return try runPipeline(manifest, options: options, group: group, shardGiven: values[Self.shard] != nil)
    }
}

struct StatusCommand: DeclaredCommand {
    static let spec = CommandSpec(name: "status", summary: "table of slides × stages from a run's ledger", synopsis: "OUT_DIR", options: [])

    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        let (_, inputs) = try Self.spec.parse(&arguments)
        guard inputs.count == 1 else { throw UsageError("expected one OUT_DIR") }
        let ledgerPath = inputs[0] + "/" + RunDescription.ledgerName
        guard FileManager.default.fileExists(atPath: ledgerPath) else { throw UsageError("\(ledgerPath): no ledger (not a run folder)") }
        let rows = try Ledger(path: ledgerPath, readOnly: true).allRows()
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
            var line = (slide == LedgerRow.wholeBatch ? "(batch)" : slide).padding(toLength: width, withPad: " ", startingAt: 0)
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

struct ReportCommand: DeclaredCommand {
    static let spec = CommandSpec(name: "report", summary: "static index.html of a run: QC, heatmaps, labels, timings, loss curves",
                                  synopsis: "OUT_DIR", options: [])

    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        let (_, inputs) = try Self.spec.parse(&arguments)
        guard inputs.count == 1 else { throw UsageError("expected one OUT_DIR") }
        print("report → \(try Report.write(outputRoot: inputs[0]))")
        return 0
    }
}

struct StagesCommand: DeclaredCommand {
    static let markdown = Option<Bool>("markdown", default: false, manifest: false, help: "print the stage reference of docs/stages.md")
    static let spec = CommandSpec(name: "stages", summary: "every stage a manifest or the command line can run, with parameters, inputs and outputs",
                                  synopsis: "[--markdown]", options: [markdown.spec])

    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        let (values, positionals) = try Self.spec.parse(&arguments)
        guard positionals.isEmpty else { throw UsageError("no arguments expected") }
        print(values[Self.markdown] ? StageCommandLine.markdownReference() : StageCommandLine.textReference(), terminator: "")
        return 0
    }
}
