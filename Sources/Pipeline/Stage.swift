import Foundation

/// Whether a stage runs once per slide or once for the whole batch.
public enum StageScope: String, Sendable {
    case perSlide = "per-slide"
    case global
}

public enum ParameterType: String, Sendable {
    case int, double, bool, string, strings
    /// A file or folder, relative to the manifest, that must exist.
    case path
}

public enum ParameterValue: Hashable, Codable, Sendable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case bool(Bool)
    case string(String)
    case strings([String])

    public var description: String {
        switch self {
        case let .int(v): return String(v)
        case let .double(v): return String(v)
        case let .bool(v): return String(v)
        case let .string(v): return v
        case let .strings(v): return v.joined(separator: ",")
        }
    }
}

public struct ParameterSpec: Sendable {
    public var name: String
    public var type: ParameterType
    /// nil: optional without default (or required when `required`).
    public var defaultValue: ParameterValue?
    public var required = false
    public var help: String

    public init(_ name: String, _ type: ParameterType, default defaultValue: ParameterValue? = nil, required: Bool = false, help: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.required = required
        self.help = help
    }
}

/// What a stage consumes: another stage's output (by id) or a path.
public struct InputSpec: Sendable {
    public var name: String
    public var required: Bool
    public var help: String

    public init(_ name: String, required: Bool = true, help: String) {
        self.name = name
        self.required = required
        self.help = help
    }
}

/// Decoded, typed parameters of one stage (defaults filled in).
public struct StageParameters: Sendable {
    public var values: [String: ParameterValue]

    public init(_ values: [String: ParameterValue]) { self.values = values }

    public func int(_ name: String) -> Int? {
        if case let .int(v)? = values[name] { return v }
        return nil
    }

    public func double(_ name: String) -> Double? {
        switch values[name] {
        case let .double(v)?: return v
        case let .int(v)?: return Double(v)
        default: return nil
        }
    }

    public func bool(_ name: String) -> Bool {
        if case let .bool(v)? = values[name] { return v }
        return false
    }

    public func string(_ name: String) -> String? {
        if case let .string(v)? = values[name] { return v }
        return nil
    }

    public func strings(_ name: String) -> [String] {
        switch values[name] {
        case let .strings(v)?: return v
        case let .string(v)?: return [v]
        default: return []
        }
    }
}

/// Everything a stage run sees. Outputs go to `output`, a private folder that becomes visible
/// under its final name only when `run` returns.
public struct StageContext: Sendable {
    /// The slide, for per-slide stages.
    public var slide: String?
    /// Every slide of the run (after sharding).
    public var slides: [String]
    public var output: String
    /// Per declared input: resolved folders or files. A per-slide upstream gives this slide's
    /// folder to a per-slide stage and every slide's folder to a global one.
    public var inputs: [String: [String]]
    public var showProgress: Bool

    public func input(_ name: String) throws -> [String] {
        guard let paths = inputs[name], !paths.isEmpty else { throw StageError.missingInput(name) }
        return paths
    }
}

public enum StageError: Error, CustomStringConvertible, Equatable {
    case missingInput(String)
    case failed(String)

    public var description: String {
        switch self {
        case let .missingInput(name): return "input '\(name)' has nothing to read (did its stage fail?)"
        case let .failed(message): return message
        }
    }
}

/// A pipeline stage: one new file implementing this plus one line in `StageRegistry`.
public protocol Stage: Sendable {
    static var kind: String { get }
    static var scope: StageScope { get }
    static var summary: String { get }
    static var parameters: [ParameterSpec] { get }
    static var inputs: [InputSpec] { get }
    /// Checks what typing alone cannot (a known preset, one grid option); throws a message.
    init(_ parameters: StageParameters) throws
    func run(_ context: StageContext) throws
    /// Stages that keep their own progress (pretraining checkpoints) may continue in a partial
    /// folder left by a killed run; the others start clean.
    static var resumesPartialOutput: Bool { get }
}

extension Stage {
    public static var resumesPartialOutput: Bool { false }
}

/// If `path` is a folder, the named file inside it (stage folders hold files with fixed names);
/// otherwise `path` itself.
func file(_ path: String, named name: String) -> String {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return path + "/" + name }
    return path
}

/// Seconds since 1970 of the last change to `path`, 0 when it cannot be read.
func modificationTime(_ path: String) -> Double {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
}
