import Console
import CYAML
import Foundation
import Storage

/// A parsed YAML (or JSON) node with where it starts in the file, for error messages.
public struct YAMLNode: Sendable {
    public enum Value: Sendable {
        case scalar(String, quoted: Bool)
        case sequence([YAMLNode])
        case mapping([(key: String, keyNode: YAMLNode, value: YAMLNode)])
    }

    public var value: Value
    /// 1-based line and column.
    public var line: Int
    public var column: Int

    public var scalar: String? {
        if case let .scalar(text, _) = value { return text }
        return nil
    }

    public var mapping: [(key: String, keyNode: YAMLNode, value: YAMLNode)]? {
        if case let .mapping(pairs) = value { return pairs }
        return nil
    }

    public var sequence: [YAMLNode]? {
        if case let .sequence(items) = value { return items }
        return nil
    }

    public subscript(key: String) -> YAMLNode? { mapping?.first { $0.key == key }?.value }

    /// Limits on what a manifest may expand to. A manifest is a few dozen lines; these are far
    /// above that and far below what would exhaust memory (nested aliases grow exponentially)
    /// or time (libyaml slows quadratically with flow nesting).
    public static let maximumBytes = 1 << 20
    public static let maximumNodes = 100_000
    public static let maximumDepth = 64

    /// Parses one YAML document with libyaml. JSON is a subset of YAML's flow style, so JSON
    /// manifests go through the same path once JSON itself has accepted them (its errors are
    /// then reported as JSON errors).
    public static func parse(_ text: String, file: String) throws -> YAMLNode {
        let bytes = Array(text.utf8)
        guard bytes.count <= maximumBytes else {
            throw ManifestError(file: file, line: 1, column: 1, message: "the manifest is \(bytes.count) bytes; more than \(maximumBytes) is not a manifest")
        }
        try checkFlowNesting(bytes, file: file)
        if file.lowercased().hasSuffix(".json") { try checkJSON(bytes, file: file) }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw ManifestError(file: file, line: 0, column: 0, message: "cannot start the YAML parser") }
        defer { yaml_parser_delete(&parser) }
        return try bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var document = yaml_document_t()
            guard yaml_parser_load(&parser, &document) == 1 else {
                let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
                let mark = parser.problem_mark
                throw ManifestError(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1, message: "YAML syntax: \(problem)")
            }
            defer { yaml_document_delete(&document) }
            guard let root = yaml_document_get_root_node(&document) else {
                throw ManifestError(file: file, line: 1, column: 1, message: "the manifest is empty")
            }
            var budget = maximumNodes
            return try convert(root, document: &document, depth: 0, budget: &budget, file: file)
        }
    }

    /// Refuses `[[[[…` and `{{{{…` nested deeper than any manifest needs, before libyaml sees them.
    private static func checkFlowNesting(_ bytes: [UInt8], file: String) throws {
        var depth = 0, line = 1, column = 0
        var quote: UInt8?
        var comment = false
        for byte in bytes {
            column += 1
            if byte == UInt8(ascii: "\n") { line += 1; column = 0; comment = false; continue }
            if comment { continue }
            if let open = quote {
                if byte == open { quote = nil }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "'"): quote = byte
            case UInt8(ascii: "#"): comment = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maximumDepth {
                    throw ManifestError(file: file, line: line, column: column, message: "nesting deeper than \(maximumDepth) levels")
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth = max(0, depth - 1)
            default: break
            }
        }
    }

    private static func checkJSON(_ bytes: [UInt8], file: String) throws {
        guard let problem = JSONText.syntaxProblem(in: bytes) else { return }
        throw ManifestError(file: file, line: problem.line, column: problem.column, message: "JSON syntax: \(problem.reason)")
    }

    private static func convert(_ node: UnsafeMutablePointer<yaml_node_t>, document: inout yaml_document_t, depth: Int,
                                budget: inout Int, file: String) throws -> YAMLNode {
        let line = Int(node.pointee.start_mark.line) + 1, column = Int(node.pointee.start_mark.column) + 1
        // Aliases share nodes in libyaml's document: counting every visit bounds their expansion.
        budget -= 1
        guard budget >= 0 else {
            throw ManifestError(file: file, line: line, column: column, message: "the manifest expands to more than \(maximumNodes) values (nested aliases?)")
        }
        guard depth <= maximumDepth else {
            throw ManifestError(file: file, line: line, column: column, message: "nesting deeper than \(maximumDepth) levels")
        }
        switch node.pointee.type {
        case YAML_SCALAR_NODE:
            let scalar = node.pointee.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let quoted = scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE || scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE
            return YAMLNode(value: .scalar(text, quoted: quoted), line: line, column: column)
        case YAML_SEQUENCE_NODE:
            var items: [YAMLNode] = []
            var item = node.pointee.data.sequence.items.start
            while let current = item, current < node.pointee.data.sequence.items.top {
                if let child = yaml_document_get_node(&document, current.pointee) {
                    items.append(try convert(child, document: &document, depth: depth + 1, budget: &budget, file: file))
                }
                item = current + 1
            }
            return YAMLNode(value: .sequence(items), line: line, column: column)
        case YAML_MAPPING_NODE:
            var pairs: [(key: String, keyNode: YAMLNode, value: YAMLNode)] = []
            var pair = node.pointee.data.mapping.pairs.start
            while let current = pair, current < node.pointee.data.mapping.pairs.top {
                if let keyNode = yaml_document_get_node(&document, current.pointee.key),
                   let valueNode = yaml_document_get_node(&document, current.pointee.value) {
                    let key = try convert(keyNode, document: &document, depth: depth + 1, budget: &budget, file: file)
                    guard let name = key.scalar else {
                        throw ManifestError(file: file, line: key.line, column: key.column, message: "a key must be a single value")
                    }
                    if let first = pairs.first(where: { $0.key == name }) {
                        throw ManifestError(file: file, line: key.line, column: key.column,
                                            message: "key '\(name)' is given twice (first at line \(first.keyNode.line))")
                    }
                    pairs.append((key: name, keyNode: key, value: try convert(valueNode, document: &document, depth: depth + 1, budget: &budget, file: file)))
                }
                pair = current + 1
            }
            return YAMLNode(value: .mapping(pairs), line: line, column: column)
        default:
            return YAMLNode(value: .scalar("", quoted: false), line: line, column: column)
        }
    }
}

/// A manifest mistake, located: `file:line:column: message` like a compiler.
public struct ManifestError: ExitStatusError, CustomStringConvertible, Equatable {
    public var exitStatus: Int32 { 2 }
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public init(file: String, at node: YAMLNode, _ message: String) {
        self.init(file: file, line: node.line, column: node.column, message: message)
    }

    public var description: String { "\(file):\(line):\(column): \(message)" }
}
