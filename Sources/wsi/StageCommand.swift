import Cluster
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

    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        let (manifest, options) = try StageCommandLine.parse(type, &arguments)
        return try runPipeline(manifest, options: options, group: group)
    }
}

/// Runs and prints what happened; exit status 1 when any item failed, 2 when an item refused
/// the command's options.
///
/// Under a launcher (mpirun, srun) with several ranks: a run with a `runsOnEveryRank` stage is
/// led by rank 0, the other ranks joining those stages; a run of other stages gives each rank a
/// shard of the slides. A scheduler array task (SLURM_ARRAY_TASK_ID) takes its shard unless
/// `--shard` chose one.
func runPipeline(_ manifest: Manifest, options: RunOptions, group: ProcessGroup, shardGiven: Bool = false) throws -> Int32 {
    var options = options
    let arrayShard = shardGiven ? nil : try SchedulerShard.fromArray(ProcessInfo.processInfo.environment)
    let everyRank = manifest.stages.contains { $0.type.runsOnEveryRank }
    if group.size > 1, arrayShard != nil || shardGiven {
        throw UsageError("\(group.size) MPI ranks inside one array task or with --shard: use one or the other")
    }
    if let arrayShard { options.shard = arrayShard }
    if group.size > 1, everyRank {
        if !group.isLeader { return try PipelineFollower(manifest: manifest, group: group).serve() }
        options.group = group
    } else if group.size > 1 {
        options.shard = (group.rank + 1, group.size)
    }
    // However the run ends, even before it starts, the followers must stop waiting, and end
    // with the leader's status: mpirun reports the first rank to exit non-zero.
    var status: Int32 = 1
    defer { PipelineFollower.release(options.group, status: status) }
    let runner: PipelineRunner
    do { runner = try PipelineRunner(manifest: manifest, options: options) } catch {
        status = (error as? ExitStatusError)?.exitStatus ?? 1
        throw error
    }
    let shard = options.shard
    // A run of global stages alone (train-mil on feature files) has no slides to count.
    let onlyGlobal = runner.slides.isEmpty && manifest.stages.allSatisfy { $0.type.scope == .global }
    printError("\(manifest.name): " + (onlyGlobal ? "" : "\(runner.slides.count) slides\(shard.count > 1 ? " in shard \(shard.index)/\(shard.count)" : ""), ")
               + "stages \(manifest.stages.map(\.id).joined(separator: " → ")) → \(options.output)"
               + (options.group.size > 1 ? " (\(options.group.size) ranks)" : ""))
    let summary = try runner.run()
    print("\(summary.completed) done, \(summary.upToDate) already up to date, \(summary.failed.count) failed, \(summary.blocked) skipped"
          + (summary.deferred.isEmpty ? "" : ", deferred to an unsharded run: \(summary.deferred.joined(separator: ", "))"))
    for failure in summary.failed {
        print("  failed: \(failure.stage) \(failure.slide == LedgerRow.wholeBatch ? "" : SlideDiscovery.stem(of: failure.slide)): \(failure.error)")
    }
    status = summary.exitStatus
    return status
}
