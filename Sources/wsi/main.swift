import Cluster
import Console
import Foundation
import Pipeline
import Storage

/// A subcommand of `wsi`.
protocol Command {
    var name: String { get }
    var summary: String { get }
    var usage: String { get }
    /// Returns the process exit status.
    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32
}

/// A command declared by a `CommandSpec`: its name, summary and usage come from it.
protocol DeclaredCommand: Command {
    static var spec: CommandSpec { get }
}

extension DeclaredCommand {
    var name: String { Self.spec.name }
    var summary: String { Self.spec.summary }
    var usage: String { Self.spec.usage }
}

let commands: [any Command] = [InfoCommand()] + StageRegistry.all.map { StageCommand(type: $0) } + [
    EncodersCommand(), EmbedCommand(), ReconstructCommand(),
    RunCommand(), StatusCommand(), ReportCommand(), StagesCommand(),
    BenchCommand(),
]

@MainActor
func mainUsage() -> String {
    var text = "wsi — whole-slide image pipeline: tiling, tissue filtering, SD-MAE pretraining, prediction, batch runs\n\n"
        + "Usage: wsi COMMAND [options]\n\nCommands:\n"
    for command in commands { text += "  " + command.name.padding(toLength: 18, withPad: " ", startingAt: 0) + command.summary + "\n" }
    text += "\nRun 'wsi COMMAND --help' for a command's options."
    return text
}

var argv = Array(CommandLine.arguments.dropFirst())
guard let name = argv.first, !name.hasPrefix("-") else {
    if argv.contains("--help") || argv.contains("-h") { print(mainUsage()); exit(0) }
    printError(mainUsage())
    exit(2)
}
guard let command = commands.first(where: { $0.name == name }) else {
    printError("wsi: unknown command '\(name)'\n\n" + mainUsage())
    exit(2)
}
var arguments = Arguments(Array(argv.dropFirst()))
if arguments.wantsHelp {
    print(command.usage)
    exit(0)
}
// A process started by mpirun or srun is one rank of a data-parallel job; any other is alone.
let group: ProcessGroup
do { group = try ProcessGroup.join() } catch {
    printError("wsi: cannot join the MPI job: \(describeError(error))")
    exit(1)
}
/// A refusal on one rank of a job ends every rank: the others would wait in a collective for it.
func fail(_ message: String, status: Int32) -> Int32 {
    guard group.size > 1 else {
        printError(message)
        return status
    }
    group.abort(message, status: status)
}

let status: Int32
do {
    try group.checkSameCommand(CommandLine.arguments.dropFirst().map { $0 })
    status = try command.run(&arguments, group: group)
} catch let error as UsageError {
    status = fail("wsi \(command.name): \(error)\n\nRun 'wsi \(command.name) --help' for its options.", status: 2)
} catch {
    status = fail("wsi \(command.name): \(describeError(error))", status: (error as? ExitStatusError)?.exitStatus ?? 1)
}
group.finish()
exit(status)
