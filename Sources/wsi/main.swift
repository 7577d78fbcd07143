import Console
import Foundation

/// A subcommand of `wsi`.
protocol Command {
    static var name: String { get }
    static var summary: String { get }
    static var usage: String { get }
    /// Returns the process exit status.
    static func run(_ arguments: inout Arguments) throws -> Int32
}

let commands: [Command.Type] = [
    InfoCommand.self, TileCommand.self, MaskCommand.self,
    PretrainCommand.self, EmbedCommand.self, ReconstructCommand.self,
    TrainClassifierCommand.self, PredictCommand.self, HeatmapCommand.self, AggregateCommand.self,
    RunCommand.self, StatusCommand.self, ReportCommand.self, StagesCommand.self,
    BenchCommand.self,
]

@MainActor
func mainUsage() -> String {
    var text = "wsi — whole-slide image pipeline: tiling, tissue filtering, and more\n\nUsage: wsi COMMAND [options]\n\nCommands:\n"
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
do {
    exit(try command.run(&arguments))
} catch let error as UsageError {
    printError("wsi \(command.name): \(error)\n\n\(command.usage)")
    exit(2)
} catch {
    printError("wsi \(command.name): \(error)")
    exit(1)
}
