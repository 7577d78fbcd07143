import Console
import Cluster
import Foundation
import Storage

/// What the leader of a data-parallel job tells the other ranks: run this stage item with this
/// context, or the run is over (`stage` nil).
struct FollowerJob: Codable {
    var stage: String?
    /// With `stage` nil: the leader's exit status, which every rank ends with.
    var exitStatus: Int32?
    var slides: [String] = []
    var output = ""
    var inputs: [String: [String]] = [:]
}

extension PipelineRunner {
    /// Sends a `runsOnEveryRank` item to the followers, which run it alongside this process.
    func dispatchToFollowers(_ entry: StageEntry, context: inout StageContext) throws {
        let group = options.group
        guard group.size > 1 else { return }
        let job = FollowerJob(stage: entry.id, slides: context.slides, output: context.output, inputs: context.inputs)
        _ = try group.broadcast(try JSONEncoder().encode(job), what: "starting \(entry.id) on every rank")
        context.group = group
    }

}

/// A rank other than the leader: waits for the leader's `runsOnEveryRank` items and runs its
/// share of each. It writes nothing (the leader keeps the ledger and the outputs) and says
/// only what went wrong on this rank.
public struct PipelineFollower {
    public let manifest: Manifest
    public let group: ProcessGroup

    public init(manifest: Manifest, group: ProcessGroup) {
        self.manifest = manifest
        self.group = group
    }

    /// Called once by the leader when its run ends, however it ends (a runner that could not
    /// start included): the followers stop waiting and the job can finish.
    public static func release(_ group: ProcessGroup, status: Int32) {
        guard group.size > 1, group.isLeader, let message = try? JSONEncoder().encode(FollowerJob(stage: nil, exitStatus: status)) else { return }
        _ = try? group.broadcast(message, what: "ending the run")
    }

    /// Returns the exit status when the leader's run ends: the leader's, which accounts for an
    /// item that failed on this rank too (every rank agrees on each item's outcome).
    public func serve() throws -> Int32 {
        var succeeded = true
        while true {
            let message = try group.broadcast(Data(), what: "waiting for the leader's next stage", patient: true)
            let job = try JSONDecoder().decode(FollowerJob.self, from: message)
            guard let id = job.stage else { return job.exitStatus ?? (succeeded ? 0 : 1) }
            guard let entry = manifest.stages.first(where: { $0.id == id }) else {
                group.abort("the leader runs stage '\(id)', which this rank's manifest does not have: start every rank with the same command")
            }
            var context = StageContext(slide: nil, slides: job.slides, output: job.output, inputs: job.inputs, showProgress: false)
            context.group = group
            do {
                _ = try entry.stage.run(context)
            } catch ClusterError.peerFailed {
                succeeded = false  // the rank that failed says why
            } catch {
                succeeded = false
                printError("\(id): rank \(group.rank): \(describeError(error))")
            }
        }
    }
}
