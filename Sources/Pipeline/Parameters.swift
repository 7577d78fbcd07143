import Foundation

/// What values an option takes. Ranges and choices live here so the command line, the manifest
/// validator, `--help`, `wsi stages` and docs/stages.md all enforce and show the same limits.
public enum ParameterType: Sendable {
    case int(ClosedRange<Int>)
    case double(ClosedRange<Double>)
    /// On the command line a switch: `--name`, or `--no-name` when the default is true.
    case bool
    case choice([String])
    case string
    /// Repeatable on the command line, a list in a manifest.
    case strings
    /// A file or folder that must exist; relative to the manifest, or to the working directory
    /// on the command line.
    case path
    /// One of the names, or else a file that must exist (as `path`): a preset or its config file.
    case nameOrPath([String])

    public var typeName: String {
        switch self {
        case .int: return "int"
        case .double: return "number"
        case .bool: return "bool"
        case .choice: return "choice"
        case .string: return "text"
        case .strings: return "list"
        case .path: return "path"
        case .nameOrPath: return "name or path"
        }
    }

    public var isChoice: Bool {
        if case .choice = self { return true }
        return false
    }

    /// The allowed values in words ("1...4096", "jpeg | png"), empty when anything of the type goes.
    public var limits: String {
        switch self {
        case let .int(range): return "\(range.lowerBound)...\(range.upperBound)"
        case let .double(range): return "\(ParameterValue.double(range.lowerBound))...\(ParameterValue.double(range.upperBound))"
        case let .choice(names): return names.joined(separator: " | ")
        case let .nameOrPath(names): return names.joined(separator: " | ") + " | a file"
        case .bool, .string, .strings, .path: return ""
        }
    }
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
        case let .double(v):
            // 256.0 reads as 256 and 0.00015 as 1.5e-04: what a user would type.
            if v == v.rounded(), abs(v) < 1e15 { return String(Int(v)) }
            return abs(v) < 1e-3 ? String(format: "%g", v) : String(v)
        case let .bool(v): return String(v)
        case let .string(v): return v
        case let .strings(v): return v.joined(separator: ",")
        }
    }
}

/// A value that does not fit its declaration; the caller adds where it came from.
public struct ParameterProblem: Error, CustomStringConvertible {
    public let description: String
}

/// One option, declared once: its name, type and limits, default, help, and whether a manifest
/// may set it (how a run is shown or scheduled is the command line's business alone).
public struct ParameterSpec: Sendable {
    /// The manifest key (snake_case); the command line spells it `--kebab-case`.
    public var name: String
    public var type: ParameterType
    /// nil: no default (optional, or required when `required`).
    public var defaultValue: ParameterValue?
    public var required: Bool
    public var help: String
    public var inManifest: Bool
    /// What to write after the flag in usage texts (`--mpp X`).
    public var placeholder: String

    public init(_ name: String, _ type: ParameterType, default defaultValue: ParameterValue? = nil, required: Bool = false,
                manifest: Bool = true, placeholder: String? = nil, help: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.required = required
        self.help = help
        self.inManifest = manifest
        self.placeholder = placeholder ?? {
            switch type {
            case .int: return "N"
            case .double: return "X"
            case .bool: return ""
            case let .choice(names): return names.joined(separator: "|")
            case .string: return "TEXT"
            case .strings: return "NAME"
            case .path: return "PATH"
            case .nameOrPath: return "NAME|PATH"
            }
        }()
    }

    /// `--name`, or `--no-name` for a switch that is on by default.
    public var flag: String {
        let kebab = name.replacingOccurrences(of: "_", with: "-")
        return turnsOff ? "--no-" + kebab : "--" + kebab
    }

    /// A switch that is on by default, so its flag turns it off (`no_upsample`, off by default,
    /// is spelt `--no-upsample` too, but turns its option on).
    public var turnsOff: Bool {
        if case .bool = type { return defaultValue == .bool(true) }
        return false
    }

    /// Parses and checks one value. `quoted`: the manifest wrote it in quotes, so it is text even
    /// if it looks like a number.
    public func value(parsing text: String, quoted: Bool = false, resolve: (String) -> String = { $0 }) throws -> ParameterValue {
        func wrong(_ expected: String) -> ParameterProblem { ParameterProblem(description: "must be \(expected), got '\(text)'") }
        switch type {
        case let .int(range):
            guard !quoted, let v = Int(text) else { throw wrong("an integer") }
            guard range.contains(v) else { throw wrong("in \(type.limits)") }
            return .int(v)
        case let .double(range):
            guard !quoted, let v = Double(text), v.isFinite else { throw wrong("a number") }
            guard range.contains(v) else { throw wrong("in \(type.limits)") }
            return .double(v)
        case .bool:
            switch text.lowercased() {
            case "true", "yes", "on": return .bool(true)
            case "false", "no", "off": return .bool(false)
            default: throw wrong("true or false")
            }
        case let .choice(names):
            guard names.contains(text) else { throw wrong("one of \(type.limits)") }
            return .string(text)
        case .string:
            return .string(text)
        case .strings:
            return .strings([text])
        case let .nameOrPath(names) where names.contains(text):
            return .string(text)
        case .path, .nameOrPath:
            guard !text.isEmpty else { throw wrong("a path") }
            let resolved = resolve(text)
            guard FileManager.default.fileExists(atPath: resolved) else {
                if case .nameOrPath = type { throw wrong("one of \(type.limits)") }
                throw ParameterProblem(description: "no such file or folder '\(text)'" + (resolved == text ? "" : " (\(resolved))"))
            }
            return .string(resolved)
        }
    }
}

/// Decoded, typed parameters of one stage, defaults filled in.
public struct StageParameters: Sendable {
    public var values: [String: ParameterValue]
    /// The names declared for these values, when known. Reading an option outside them is a
    /// mistake in the program (the option would always read as its default), which the stage
    /// tests catch by building every stage.
    private let declared: Set<String>?

    public init(_ values: [String: ParameterValue]) {
        self.values = values
        declared = nil
    }

    /// Fills in defaults and checks that the required ones were given.
    public init(_ given: [String: ParameterValue], specs: [ParameterSpec]) throws {
        var values = given
        for spec in specs where values[spec.name] == nil {
            if let value = spec.defaultValue { values[spec.name] = value }
            else if spec.required { throw ParameterProblem(description: "needs \(spec.name) (\(spec.help))") }
        }
        self.values = values
        declared = Set(specs.map(\.name))
    }

    public subscript<Value>(option: Option<Value>) -> Value {
        precondition(declared?.contains(option.name) ?? true, "option '\(option.name)' is read but not declared")
        return option.value(in: values)
    }

    /// Generic readers for the pipeline's own machinery, which walks declarations by name
    /// (inputs, path parameters); stages read through their `Option`s.
    func string(_ name: String) -> String? { stringValue(values[name]) }

    func strings(_ name: String) -> [String] {
        switch values[name] {
        case let .strings(v)?: return v
        case let .string(v)?: return [v]
        default: return []
        }
    }

    /// A stable text of the named values, for the ledger's parameter hash (what a manifest can
    /// set changes results; how a run is scheduled does not).
    func fingerprint(of names: [String]) -> String {
        values.filter { names.contains($0.key) }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ";")
    }
}

/// An option's declaration together with the Swift type a stage reads it as, so a value is read
/// through its declaration (`parameters[Self.size]`), its default written once, and a choice
/// arrives as its enum.
public struct Option<Value: Sendable>: Sendable {
    public let spec: ParameterSpec
    private let decode: @Sendable (ParameterValue?) -> Value

    public var name: String { spec.name }

    private init(_ spec: ParameterSpec, decode: @escaping @Sendable (ParameterValue?) -> Value) {
        self.spec = spec
        self.decode = decode
    }

    func value(in values: [String: ParameterValue]) -> Value { decode(values[spec.name]) }
}

private func intValue(_ value: ParameterValue?) -> Int? {
    if case let .int(v)? = value { return v }
    return nil
}

private func doubleValue(_ value: ParameterValue?) -> Double? {
    switch value {
    case let .double(v)?: return v
    case let .int(v)?: return Double(v)
    default: return nil
    }
}

private func stringValue(_ value: ParameterValue?) -> String? {
    if case let .string(v)? = value { return v }
    return nil
}

/// The numbers an option can hold, checked against a range.
public protocol OptionNumber: Comparable, Sendable {
    static func parameterType(_ range: ClosedRange<Self>) -> ParameterType
    var parameterValue: ParameterValue { get }
    init?(parameter: ParameterValue?)
}

extension Int: OptionNumber {
    public static func parameterType(_ range: ClosedRange<Int>) -> ParameterType { .int(range) }
    public var parameterValue: ParameterValue { .int(self) }
    public init?(parameter: ParameterValue?) {
        guard let value = intValue(parameter) else { return nil }
        self = value
    }
}

extension Double: OptionNumber {
    public static func parameterType(_ range: ClosedRange<Double>) -> ParameterType { .double(range) }
    public var parameterValue: ParameterValue { .double(self) }
    /// An integer written where a number is expected reads as that number.
    public init?(parameter: ParameterValue?) {
        guard let value = doubleValue(parameter) else { return nil }
        self = value
    }
}

/// An optional number: nil when not given.
public protocol OptionalNumber: Sendable {
    associatedtype Number: OptionNumber
    init(_ number: Number?)
}

extension Optional: OptionalNumber where Wrapped: OptionNumber {
    public init(_ number: Wrapped?) { self = number }
}

extension Option where Value: OptionNumber {
    public init(_ name: String, _ range: ClosedRange<Value>, default value: Value, manifest: Bool = true, placeholder: String? = nil,
                help: String) {
        self.init(ParameterSpec(name, Value.parameterType(range), default: value.parameterValue, manifest: manifest, placeholder: placeholder,
                                help: help)) { Value(parameter: $0) ?? value }
    }
}

extension Option where Value: OptionalNumber {
    public init(_ name: String, _ range: ClosedRange<Value.Number>, manifest: Bool = true, placeholder: String? = nil, help: String) {
        self.init(ParameterSpec(name, Value.Number.parameterType(range), manifest: manifest, placeholder: placeholder, help: help)) {
            Value(Value.Number(parameter: $0))
        }
    }
}

extension Option where Value == Bool {
    /// A switch; `--no-name` on the command line when it is on by default.
    public init(_ name: String, default value: Bool, manifest: Bool = true, help: String) {
        self.init(ParameterSpec(name, .bool, default: .bool(value), manifest: manifest, help: help)) {
            if case let .bool(v)? = $0 { return v }
            return value
        }
    }
}

/// How a text option is checked: free text, an existing path, or a name from a list or else a file.
public enum TextKind: Sendable {
    case text
    case path
    case nameOrPath([String])
    /// One of names known only when the program runs (presets).
    case oneOf([String])

    var parameterType: ParameterType {
        switch self {
        case .text: return .string
        case let .oneOf(names): return .choice(names)
        case .path: return .path
        case let .nameOrPath(names): return .nameOrPath(names)
        }
    }
}

extension Option where Value == String? {
    public init(_ name: String, _ kind: TextKind, manifest: Bool = true, placeholder: String? = nil, help: String) {
        self.init(ParameterSpec(name, kind.parameterType, manifest: manifest, placeholder: placeholder, help: help), decode: stringValue)
    }
}

extension Option where Value == String {
    /// Text that must be given: the parameters refuse to exist without it.
    public init(required name: String, _ kind: TextKind, manifest: Bool = true, placeholder: String? = nil, help: String) {
        self.init(ParameterSpec(name, kind.parameterType, required: true, manifest: manifest, placeholder: placeholder, help: help)) {
            stringValue($0) ?? ""
        }
    }

    /// Text with a default.
    public init(_ name: String, _ kind: TextKind, default value: String, manifest: Bool = true, placeholder: String? = nil, help: String) {
        self.init(ParameterSpec(name, kind.parameterType, default: .string(value), manifest: manifest, placeholder: placeholder, help: help)) {
            stringValue($0) ?? value
        }
    }
}

extension Option where Value == [String] {
    /// Repeatable on the command line, a list in a manifest.
    public init(_ name: String, required: Bool = false, manifest: Bool = true, placeholder: String? = nil, help: String) {
        self.init(ParameterSpec(name, .strings, required: required, manifest: manifest, placeholder: placeholder, help: help)) {
            switch $0 {
            case let .strings(v)?: return v
            case let .string(v)?: return [v]
            default: return []
            }
        }
    }
}

extension Option where Value: CaseIterable & RawRepresentable, Value.RawValue == String {
    /// One of the enum's cases, spelt as their raw values.
    public init(_ name: String, default value: Value, manifest: Bool = true, placeholder: String? = nil, help: String) {
        self.init(ParameterSpec(name, .choice(Value.allCases.map(\.rawValue)), default: .string(value.rawValue), manifest: manifest,
                                placeholder: placeholder, help: help)) {
            stringValue($0).flatMap(Value.init(rawValue:)) ?? value
        }
    }
}

/// An optional choice: nil when not given.
public protocol OptionalChoice: ExpressibleByNilLiteral {
    associatedtype Wrapped: CaseIterable & RawRepresentable where Wrapped.RawValue == String
    init(_ some: Wrapped)
}

extension Optional: OptionalChoice where Wrapped: CaseIterable & RawRepresentable, Wrapped.RawValue == String {}

extension Option where Value: OptionalChoice {
    public init(_ name: String, manifest: Bool = true, placeholder: String? = nil, help: String) {
        self.init(ParameterSpec(name, .choice(Value.Wrapped.allCases.map(\.rawValue)), manifest: manifest, placeholder: placeholder, help: help)) {
            stringValue($0).flatMap(Value.Wrapped.init(rawValue:)).map(Value.init) ?? nil
        }
    }
}
