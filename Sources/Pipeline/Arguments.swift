import Console
import Foundation

/// A command line mistake: printed with the command's usage, exit status 2.
public struct UsageError: ExitStatusError, CustomStringConvertible {
    public var exitStatus: Int32 { 2 }
    public let description: String
    public init(_ message: String) { description = message }
}

/// Options of the form `--name value` or `--name=value`, switches `--name`, and positionals.
/// Each accessor consumes what it reads, so anything left over is reported as unknown.
public struct Arguments {
    private var tokens: [String]

    public init(_ tokens: [String]) { self.tokens = tokens }

    /// The first argument, without consuming it (for sub-subcommands such as `bench train`).
    public var first: String? { tokens.first }

    public var wantsHelp: Bool { tokens.contains("--help") || tokens.contains("-h") }

    public mutating func flag(_ flag: String) throws -> Bool {
        let hits = tokens.indices.filter { tokens[$0] == flag }
        if let valued = tokens.first(where: { $0.hasPrefix(flag + "=") }) { throw UsageError("\(flag) takes no value, got '\(valued)'") }
        guard let first = hits.first else { return false }
        guard hits.count == 1 else { throw UsageError("\(flag) given twice") }
        tokens.remove(at: first)
        return true
    }

    /// Every value of a repeatable option, in order.
    public mutating func values(_ flag: String) throws -> [String] {
        var found: [String] = []
        var i = 0
        while i < tokens.count {
            if tokens[i].hasPrefix(flag + "=") {
                found.append(String(tokens[i].dropFirst(flag.count + 1)))
                tokens.remove(at: i)
            } else if tokens[i] == flag {
                guard i + 1 < tokens.count, !tokens[i + 1].hasPrefix("--") else { throw UsageError("\(flag) needs a value") }
                found.append(tokens[i + 1])
                tokens.removeSubrange(i...(i + 1))
            } else {
                i += 1
            }
        }
        return found
    }

    /// The value of a single-valued option; repeating it is a mistake, not last-wins.
    public mutating func value(_ flag: String) throws -> String? {
        let found = try values(flag)
        guard found.count <= 1 else { throw UsageError("\(flag) given twice") }
        return found.first
    }

    /// Reads one declared option: nil when absent.
    public mutating func parameter(_ spec: ParameterSpec) throws -> ParameterValue? {
        func checked(_ text: String) throws -> ParameterValue {
            do {
                return try spec.value(parsing: text, resolve: { URL(fileURLWithPath: $0).standardizedFileURL.path })
            } catch let problem as ParameterProblem {
                throw UsageError("\(spec.flag) \(problem)")
            }
        }
        switch spec.type {
        case .bool:
            guard try flag(spec.flag) else { return nil }
            return .bool(!spec.turnsOff)
        case .strings:
            let texts = try values(spec.flag)
            return texts.isEmpty ? nil : .strings(texts)
        default:
            return try value(spec.flag).map(checked)
        }
    }

    /// The remaining positional arguments; fails on any option nobody asked for.
    public mutating func positionals() throws -> [String] {
        if let unknown = tokens.first(where: { $0.hasPrefix("--") }) {
            throw UsageError("unknown option \(unknown.split(separator: "=", maxSplits: 1).first.map(String.init) ?? unknown)")
        }
        defer { tokens = [] }
        return tokens
    }
}

/// A command's interface, declared once: usage text and parsing both come from it.
public struct CommandSpec: Sendable {
    public var name: String
    public var summary: String
    /// What follows the name, e.g. "SLIDE_OR_DIR --out DIR".
    public var synopsis: String
    /// Paragraphs between the synopsis and the option list.
    public var details: String
    public var options: [ParameterSpec]

    public init(name: String, summary: String, synopsis: String, details: String = "", options: [ParameterSpec]) {
        self.name = name
        self.summary = summary
        self.synopsis = synopsis
        self.details = details
        self.options = options
    }

    public var usage: String {
        var text = "Usage: wsi \(name) \(synopsis)\n\n\(summary).\n"
        if !details.isEmpty { text += "\n" + details + "\n" }
        if !options.isEmpty { text += "\nOptions:\n" + Self.optionLines(options) }
        return text
    }

    /// Aligned lines: flag, placeholder, help, then default and limits in brackets.
    public static func optionLines(_ options: [ParameterSpec]) -> String {
        let left = options.map { "  " + $0.flag + ($0.placeholder.isEmpty ? "" : " " + $0.placeholder) }
        let width = min(34, (left.map(\.count).max() ?? 0) + 2)
        // Worth saying only where some options can also go in a manifest (a stage's command).
        let mixed = options.contains(where: \.inManifest)
        return zip(left, options).map { flag, spec in
            var notes: [String] = []
            if spec.required { notes.append("required") }
            if let value = spec.defaultValue, !spec.turnsOff, value != .bool(false) { notes.append("default \(value)") }
            // Choices are already spelled out in the placeholder.
            if !spec.type.isChoice, !spec.type.limits.isEmpty { notes.append(spec.type.limits) }
            if mixed && !spec.inManifest { notes.append("command line only") }
            let help = spec.turnsOff ? "turn off: " + spec.help : spec.help
            let padded = flag.count < width ? flag.padding(toLength: width, withPad: " ", startingAt: 0) : flag + "\n" + String(repeating: " ", count: width)
            return padded + help + (notes.isEmpty ? "" : " [\(notes.joined(separator: ", "))]")
        }.joined(separator: "\n") + "\n"
    }

    /// Reads every declared option of a command that takes no positional argument.
    public func parseOptions(_ arguments: inout Arguments) throws -> StageParameters {
        let (values, positionals) = try parse(&arguments)
        guard positionals.isEmpty else { throw UsageError("unexpected argument '\(positionals[0])'") }
        return values
    }

    /// Reads every declared option (defaults filled in) and returns them with the positionals.
    public func parse(_ arguments: inout Arguments) throws -> (StageParameters, [String]) {
        var given: [String: ParameterValue] = [:]
        for spec in options { given[spec.name] = try arguments.parameter(spec) }
        for spec in options where spec.required && given[spec.name] == nil {
            throw UsageError("\(spec.flag) \(spec.placeholder) is required")
        }
        let positionals = try arguments.positionals()
        do {
            return (try StageParameters(given, specs: options), positionals)
        } catch let problem as ParameterProblem {
            throw UsageError("\(problem)")
        }
    }
}
