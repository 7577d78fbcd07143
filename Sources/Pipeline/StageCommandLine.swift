import Foundation

/// `wsi <stage> ...`: the command line of a stage, made from its declaration. It runs exactly
/// what a manifest of that one stage runs (same options, defaults, checks, outputs, ledger).
public enum StageCommandLine {
    /// How a run goes, for every stage command and `wsi run`; none of it changes a result.
    public static let jobs = Option<Int>("jobs", 1...256, default: 1, manifest: false, help: "slides processed at once")
    public static let quiet = Option<Bool>("quiet", default: false, manifest: false, help: "no progress bars")
    static let out = Option<String>(required: "out", .text, manifest: false, placeholder: "DIR",
                                    help: "run folder: this stage writes DIR/<stage>/, the ledger is DIR/ledger.sqlite")

    public static func spec(_ type: any Stage.Type) -> CommandSpec {
        let inputs = type.inputs.map { input in
            ParameterSpec(input.name, input.multiple ? .strings : .path, required: input.required, manifest: false,
                          placeholder: "PATH", help: input.help + (input.multiple ? " (repeatable)" : ""))
        }
        let perSlide = type.scope == .perSlide
        let required = inputs.filter(\.required).map { "\($0.flag) PATH" }
        let synopsis = ((perSlide ? ["SLIDE_OR_DIR"] : []) + required + ["--out DIR", "[options]"]).joined(separator: " ")
        var details = perSlide
            ? "Runs on SLIDE_OR_DIR (a folder is searched recursively) and writes DIR/\(type.kind)/<slide>/:"
            : "Runs once and writes DIR/\(type.kind)/:"
        for output in type.outputs { details += "\n  \(output.name.padding(toLength: max(22, output.name.count + 2), withPad: " ", startingAt: 0))\(output.help)" }
        details += """
        \n
        The same stage in a manifest: 'stage: \(type.kind)' with the parameters below in snake_case.
        Re-running the same command skips what is done; changed options or inputs redo it.
        """
        return CommandSpec(name: type.kind, summary: type.summary, synopsis: synopsis, details: details,
                           options: [out.spec] + inputs + type.parameters + (perSlide ? [jobs.spec, quiet.spec] : [quiet.spec]))
    }

    /// Parses a stage's command line into the one-stage manifest and run options it means.
    public static func parse(_ type: any Stage.Type, _ arguments: inout Arguments) throws -> (Manifest, RunOptions) {
        let command = spec(type)
        let (values, positionals) = try command.parse(&arguments)
        var slides: String?
        if type.scope == .perSlide {
            guard positionals.count == 1 else { throw UsageError("expected one SLIDE_OR_DIR, got \(positionals.count)") }
            slides = positionals[0]
        } else if !positionals.isEmpty {
            throw UsageError("unexpected argument '\(positionals[0])'")
        }
        var inputs: [String: [String]] = [:]
        for input in type.inputs {
            let paths = values.strings(input.name)
            for path in paths where !FileManager.default.fileExists(atPath: path) {
                throw UsageError("--\(input.name): no such file or folder '\(path)'")
            }
            if !paths.isEmpty { inputs[input.name] = paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path } }
            if paths.isEmpty, let other = input.unlessParameter, values.string(other) == nil {
                throw UsageError("--\(input.name) PATH or --\(other) is required (\(input.help))")
            }
        }
        let parameters = StageParameters(values.values.filter { key, _ in type.parameters.contains { $0.name == key } })
        let manifest: Manifest
        do {
            manifest = try Manifest.single(type, parameters: parameters, inputs: inputs)
        } catch let error as StageError {
            throw UsageError("\(error)")
        }
        var options = RunOptions(slides: slides, output: values[out])
        if type.scope == .perSlide { options.jobs = values[jobs] }
        options.showProgress = !values[quiet]
        options.mergesDescription = true
        return (manifest, options)
    }

    /// docs/stages.md's reference of every stage, generated here so a test can hold the two equal.
    public static func markdownReference() -> String {
        var text = ""
        for type in StageRegistry.all {
            text += "#### `\(type.kind)` (\(type.scope.rawValue))\n\n\(type.summary).\n\n"
            if !type.inputs.isEmpty {
                text += "Inputs: " + type.inputs.map { input in
                    let need = input.required ? "" : input.unlessParameter.map { " (unless `\($0)` is given)" } ?? " (optional)"
                    return "`\(input.name)`\(need) — \(input.help)"
                }.joined(separator: "; ") + ".\n\n"
            }
            text += "Writes " + type.outputs.map { "`\($0.name)`" }.joined(separator: ", ") + ".\n\n"
            if !type.parameters.isEmpty {
                text += "| parameter | command line | type | default | allowed | what it does |\n|---|---|---|---|---|---|\n"
                for p in type.parameters {
                    let name = p.inManifest ? "`\(p.name)`" : "—"
                    let value = p.defaultValue.map { "`\($0)`" } ?? (p.required ? "required" : "")
                    text += "| \(name) | `\(p.flag)` | \(p.type.typeName) | \(value) | \(p.type.limits.replacingOccurrences(of: "|", with: "\\|")) | \(p.help) |\n"
                }
                text += "\n"
            }
        }
        return text
    }

    /// `wsi stages`: every stage with its inputs, outputs and parameters.
    public static func textReference() -> String {
        var text = ""
        for type in StageRegistry.all {
            text += "\(type.kind) (\(type.scope.rawValue)): \(type.summary)\n"
            for input in type.inputs { text += "  input \(input.name)\(input.required ? "" : " (optional)"): \(input.help)\n" }
            text += "  writes " + type.outputs.map(\.name).joined(separator: ", ") + "\n"
            for p in type.parameters {
                var notes = [p.type.typeName]
                if let value = p.defaultValue { notes.append("default \(value)") } else if p.required { notes.append("required") }
                if !p.type.limits.isEmpty { notes.append(p.type.limits) }
                if !p.inManifest { notes.append("command line only") }
                text += "  \(p.name) (\(notes.joined(separator: ", "))): \(p.help)\n"
            }
        }
        return text
    }
}
