import Foundation
import Storage

/// One stage entry of a manifest, validated and typed.
public struct StageEntry: Sendable {
    public var id: String
    public var type: any Stage.Type
    public var stage: any Stage
    public var parameters: StageParameters
    /// Input name → upstream stage ids or existing paths.
    public var inputs: [String: [InputSource]]
    /// Folder under the output root.
    public var output: String
}

public enum InputSource: Hashable, Sendable {
    case stage(String)
    case path(String)
}

/// A pipeline manifest: which stages run, with what parameters, reading whose outputs.
///
/// ```yaml
/// name: tiling
/// slides: ../samples/slides      # relative to this file; `wsi run --slides` overrides
/// output: ../out/tiling          # `wsi run --out` overrides
/// stages:
///   - stage: tile
///     params: {mpp: 0.5, size: 256, format: shard}
///   - stage: mask-qc
/// ```
public struct Manifest: Sendable {
    public var path: String
    public var name: String
    public var slides: String?
    public var output: String?
    /// In an order where every stage comes after the stages it reads.
    public var stages: [StageEntry]

    public static func load(path: String) throws -> Manifest {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ManifestError(file: path, line: 0, column: 0, message: "cannot read the manifest: \(describeError(error))")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    public static func parse(_ text: String, path: String) throws -> Manifest {
        var parser = ManifestParser(path: path)
        return try parser.parse(try YAMLNode.parse(text, file: path))
    }

    /// A manifest of one stage, as `wsi <stage> ...` runs it: inputs are paths, the output folder
    /// is named after the stage.
    public static func single(_ type: any Stage.Type, parameters: StageParameters, inputs: [String: [String]]) throws -> Manifest {
        let stage = try type.init(parameters)
        let entry = StageEntry(id: type.kind, type: type, stage: stage, parameters: parameters,
                               inputs: inputs.mapValues { $0.map(InputSource.path) }, output: type.kind)
        return Manifest(path: "(command line)", name: type.kind, slides: nil, output: nil, stages: [entry])
    }

    /// Rejects absolute paths and `..`: every output stays inside the run's output root.
    static func containedOutput(_ value: String, node: YAMLNode, file: String) throws -> String {
        let components = value.split(separator: "/", omittingEmptySubsequences: true)
        guard !value.hasPrefix("/"), !value.hasPrefix("~"), !components.contains(".."), !components.isEmpty,
              components.contains(where: { $0 != "." }) else {
            throw ManifestError(file: file, at: node, "output '\(value)' must be a relative folder inside the run's output root (no '..', not absolute)")
        }
        return components.filter { $0 != "." }.joined(separator: "/")
    }

    static func decodeParameters(_ node: YAMLNode?, at item: YAMLNode, type: any Stage.Type, file: String,
                                 resolve: @escaping (String) -> String) throws -> StageParameters {
        var values: [String: ParameterValue] = [:]
        if let node, node.mapping == nil, node.scalar != "" {
            throw ManifestError(file: file, at: node, "'params' must be a mapping")
        }
        for pair in node?.mapping ?? [] {
            guard let spec = type.parameters.first(where: { $0.name == pair.key }), spec.inManifest else {
                let known = type.parameters.filter(\.inManifest).map(\.name)
                let hint = type.parameters.contains { $0.name == pair.key } ? "'\(pair.key)' is a command-line option, not a manifest parameter"
                    : "\(type.kind) has no parameter '\(pair.key)'"
                throw ManifestError(file: file, at: pair.keyNode, "\(hint) (parameters: \(known.joined(separator: ", ")))")
            }
            values[spec.name] = try typed(pair.value, spec: spec, kind: type.kind, file: file, resolve: resolve)
        }
        do {
            return try StageParameters(values, specs: type.parameters)
        } catch {
            throw ManifestError(file: file, at: node ?? item, "\(type.kind) \(error)")
        }
    }

    static func typed(_ node: YAMLNode, spec: ParameterSpec, kind: String, file: String, resolve: (String) -> String) throws -> ParameterValue {
        func problem(_ message: String) -> ManifestError { ManifestError(file: file, at: node, "\(kind).\(spec.name) \(message)") }
        if case .strings = spec.type, let items = node.sequence {
            return .strings(try items.map { item in
                guard let text = item.scalar else { throw problem("must be a list of single values") }
                return text
            })
        }
        guard case let .scalar(text, quoted) = node.value else {
            throw problem("must be a single value, got a \(node.sequence != nil ? "list" : "mapping")")
        }
        do {
            return try spec.value(parsing: text, quoted: quoted, resolve: resolve)
        } catch {
            throw problem("\(error)")
        }
    }

    /// Kahn's algorithm in manifest order; a leftover stage is on a cycle.
    static func topologicalOrder(_ entries: [StageEntry], nodes: [String: YAMLNode], file: String) throws -> [StageEntry] {
        var remaining = entries
        var ordered: [StageEntry] = []
        while !remaining.isEmpty {
            let done = Set(ordered.map(\.id))
            guard let next = remaining.firstIndex(where: { entry in
                entry.inputs.values.joined().allSatisfy { if case let .stage(id) = $0 { return done.contains(id) } else { return true } }
            }) else {
                let cycle = remaining.map(\.id).joined(separator: " → ")
                let node = nodes[remaining[0].id] ?? YAMLNode(value: .scalar("", quoted: false), line: 1, column: 1)
                throw ManifestError(file: file, at: node, "stages read each other in a cycle: \(cycle)")
            }
            ordered.append(remaining.remove(at: next))
        }
        return ordered
    }
}

/// Reads a manifest in phases: the top level, each stage (kind, id, parameters, inputs named,
/// output folder), then the inputs resolved against every stage id, the outputs checked apart,
/// and the stages put in order.
private struct ManifestParser {
    /// An input as written, resolved once every stage id is known (a stage may read a later one).
    struct PendingInput {
        var id: String
        var name: String
        var value: String
        var node: YAMLNode
    }

    let path: String
    let base: String
    var entries: [StageEntry] = []
    /// Each stage id and where it was written.
    var nodes: [String: YAMLNode] = [:]
    var pendingInputs: [PendingInput] = []

    init(path: String) {
        self.path = path
        base = URL(fileURLWithPath: path).deletingLastPathComponent().path
    }

    func fail(_ node: YAMLNode, _ message: String) -> ManifestError { ManifestError(file: path, at: node, message) }

    func resolve(_ relative: String) -> String {
        relative.hasPrefix("/") ? relative : URL(fileURLWithPath: base + "/" + relative).standardizedFileURL.path
    }

    mutating func parse(_ root: YAMLNode) throws -> Manifest {
        let items = try stageItems(root)
        for item in items { try parseStage(item) }
        let wrongKinds = try resolveInputs()
        try checkOutputsApart(root["stages"] ?? root)
        let ordered = try Manifest.topologicalOrder(entries, nodes: nodes, file: path)
        if let wrongKind = wrongKinds.first { throw wrongKind }
        return Manifest(path: path, name: root["name"]?.scalar ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent,
                        slides: root["slides"]?.scalar.map(resolve), output: root["output"]?.scalar.map(resolve), stages: ordered)
    }

    /// The top level's keys checked; the stage list.
    func stageItems(_ root: YAMLNode) throws -> [YAMLNode] {
        guard let top = root.mapping else { throw fail(root, "a manifest is a mapping with 'stages' (and optional 'name', 'slides', 'output')") }
        for entry in top where !["name", "slides", "output", "stages"].contains(entry.key) {
            throw fail(entry.keyNode, "unknown key '\(entry.key)' (expected name, slides, output, stages)")
        }
        for key in ["name", "slides", "output"] {
            if let node = root[key], node.scalar?.isEmpty ?? true { throw fail(node, "'\(key)' must be a single non-empty value") }
        }
        guard let stagesNode = root["stages"] else { throw fail(root, "missing 'stages'") }
        guard let items = stagesNode.sequence, !items.isEmpty else { throw fail(stagesNode, "'stages' must be a non-empty list") }
        return items
    }

    mutating func parseStage(_ item: YAMLNode) throws {
        guard let fields = item.mapping else { throw fail(item, "a stage is a mapping with 'stage' and optional 'id', 'params', 'inputs', 'output'") }
        for field in fields where !["stage", "id", "params", "inputs", "output"].contains(field.key) {
            throw fail(field.keyNode, "unknown key '\(field.key)' in a stage (expected stage, id, params, inputs, output)")
        }
        guard let kindNode = item["stage"], let kind = kindNode.scalar else { throw fail(item, "missing 'stage' (the stage's kind)") }
        guard let type = StageRegistry.stage(kind: kind) else {
            throw fail(kindNode, "unknown stage '\(kind)' (known: \(StageRegistry.all.map { $0.kind }.joined(separator: ", ")))")
        }
        let id = try stageID(item, kind: kind, kindNode: kindNode)
        let parameters = try Manifest.decodeParameters(item["params"], at: item, type: type, file: path, resolve: resolve)
        let stage: any Stage
        do { stage = try type.init(parameters) } catch {
            throw fail(item["params"] ?? kindNode, "\(kind): \(error)")
        }
        try collectInputs(item, id: id, type: type)
        entries.append(StageEntry(id: id, type: type, stage: stage, parameters: parameters, inputs: [:], output: try outputFolder(item, id: id)))
    }

    mutating func stageID(_ item: YAMLNode, kind: String, kindNode: YAMLNode) throws -> String {
        let idNode = item["id"] ?? kindNode
        guard let id = item["id"].map({ $0.scalar }) ?? kind else { throw fail(idNode, "'id' must be a single value") }
        guard id.range(of: "^[A-Za-z0-9][A-Za-z0-9_-]*$", options: .regularExpression) != nil else {
            throw fail(idNode, "stage id '\(id)' may hold only letters, digits, '-' and '_'")
        }
        guard nodes[id] == nil else { throw fail(idNode, "stage id '\(id)' is used twice; give one an 'id'") }
        nodes[id] = idNode
        return id
    }

    /// The inputs a stage names, kept for `resolveInputs`; a required one missing is refused here.
    mutating func collectInputs(_ item: YAMLNode, id: String, type: any Stage.Type) throws {
        if let inputsNode = item["inputs"] {
            guard let pairs = inputsNode.mapping else { throw fail(inputsNode, "'inputs' must map input names to stage ids or paths") }
            for pair in pairs {
                guard let spec = type.inputs.first(where: { $0.name == pair.key }) else {
                    throw fail(pair.keyNode, "\(type.kind) has no input '\(pair.key)' (inputs: \(type.inputs.map(\.name).joined(separator: ", ")))")
                }
                let values = pair.value.sequence ?? [pair.value]
                guard !values.isEmpty, spec.multiple || values.count == 1 else {
                    throw fail(pair.value, "input '\(pair.key)' takes \(spec.multiple ? "one or more stage ids or paths" : "one stage id or path")")
                }
                for value in values {
                    guard let text = value.scalar, !text.isEmpty else { throw fail(value, "input '\(pair.key)' must be a stage id or a path") }
                    pendingInputs.append(PendingInput(id: id, name: pair.key, value: text, node: value))
                }
            }
        }
        for spec in type.inputs where item["inputs"]?[spec.name] == nil {
            if spec.required {
                throw fail(item, "\(type.kind) needs input '\(spec.name)' (\(spec.help))")
            }
            if let other = spec.unlessParameter, item["params"]?[other] == nil {
                throw fail(item, "\(type.kind) needs input '\(spec.name)' or parameter '\(other)' (\(spec.help))")
            }
        }
    }

    func outputFolder(_ item: YAMLNode, id: String) throws -> String {
        guard let outputNode = item["output"] else { return id }
        guard let value = outputNode.scalar, !value.isEmpty else { throw fail(outputNode, "'output' must be a folder name") }
        return try Manifest.containedOutput(value, node: outputNode, file: path)
    }

    /// Each input becomes a known stage id, else a path that must exist. A stage of the wrong
    /// kind is returned, to be reported after the order is known, so a cycle is named as one.
    mutating func resolveInputs() throws -> [ManifestError] {
        var wrongKinds: [ManifestError] = []
        for pending in pendingInputs {
            guard let index = entries.firstIndex(where: { $0.id == pending.id }) else { continue }
            let source: InputSource
            if nodes[pending.value] != nil {
                guard pending.value != pending.id else { throw fail(pending.node, "stage '\(pending.id)' cannot read its own output") }
                let reader = entries[index].type, upstream = entries.first { $0.id == pending.value }?.type.kind
                if let upstream, let kinds = reader.inputs.first(where: { $0.name == pending.name })?.reads, !kinds.contains(upstream) {
                    wrongKinds.append(fail(pending.node, "input '\(pending.name)' of \(reader.kind) reads the output of "
                                           + kinds.joined(separator: " or ") + ", not of \(upstream) (stage '\(pending.value)')"))
                }
                source = .stage(pending.value)
            } else {
                let resolved = resolve(pending.value)
                guard FileManager.default.fileExists(atPath: resolved) else {
                    throw fail(pending.node, "input '\(pending.name)': '\(pending.value)' is neither a stage id nor an existing path (\(resolved))")
                }
                source = .path(resolved)
            }
            entries[index].inputs[pending.name, default: []].append(source)
        }
        return wrongKinds
    }

    func checkOutputsApart(_ stagesNode: YAMLNode) throws {
        let outputs = entries.map(\.output)
        for (i, a) in outputs.enumerated() {
            for b in outputs[(i + 1)...] where a == b || a.hasPrefix(b + "/") || b.hasPrefix(a + "/") {
                throw fail(stagesNode, "two stages write into the same output folder ('\(a)' and '\(b)')")
            }
        }
    }
}
