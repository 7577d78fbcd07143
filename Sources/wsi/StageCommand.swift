import Console
import Foundation
import Pipeline
import SlideIO

/// `wsi <stage>`: one stage over a slide or folder, made from the stage's declaration and run
/// through the same runner, ledger and output layout as a manifest.
struct StageCommand: Command {
    let type: any Stage.Type
    var name: String { type.kind }
    var summary: String { type.summary }
    var usage: String { StageCommandLine.spec(type).usage }

    func run(_ arguments: inout Arguments) throws -> Int32 {
        let (manifest, options) = try StageCommandLine.parse(type, &arguments)
        return try runPipeline(manifest, options: options)
    }
}

/// Runs and prints what happened; exit status 1 when any item failed.
func runPipeline(_ manifest: Manifest, options: RunOptions) throws -> Int32 {
    let runner = try PipelineRunner(manifest: manifest, options: options)
    let shard = options.shard
    printError("\(manifest.name): \(runner.slides.count) slides\(shard.count > 1 ? " in shard \(shard.index)/\(shard.count)" : ""), "
               + "stages \(manifest.stages.map(\.id).joined(separator: " → ")) → \(options.output)")
    let summary = try runner.run()
    print("\(summary.completed) done, \(summary.upToDate) already up to date, \(summary.failed.count) failed, \(summary.blocked) skipped"
          + (summary.deferred.isEmpty ? "" : ", deferred to an unsharded run: \(summary.deferred.joined(separator: ", "))"))
    for failure in summary.failed {
        print("  failed: \(failure.stage) \(failure.slide == "*" ? "" : SlideDiscovery.stem(of: failure.slide)): \(failure.error)")
    }
    return summary.failed.isEmpty ? 0 : 1
}
