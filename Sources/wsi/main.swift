import Distributed
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
let status: Int32
do {
    status = try command.run(&arguments, group: group)
} catch let error as UsageError {
    printError("wsi \(command.name): \(error)\n\nRun 'wsi \(command.name) --help' for its options.")
    status = 2
} catch let error as ManifestError {
    printError("wsi \(command.name): \(error)")
    status = 2
} catch {
    printError("wsi \(command.name): \(describeError(error))")
    status = 1
}
group.finish()
exit(status)
