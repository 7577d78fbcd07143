import CYAML
import Foundation

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

    /// Parses one YAML document with libyaml. JSON is a subset of YAML's flow style, so JSON
    /// manifests go through the same path.
    public static func parse(_ text: String, file: String) throws -> YAMLNode {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw ManifestError(file: file, line: 0, column: 0, message: "cannot start the YAML parser") }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
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
            return convert(root, document: &document)
        }
    }

    private static func convert(_ node: UnsafeMutablePointer<yaml_node_t>, document: inout yaml_document_t) -> YAMLNode {
        let line = Int(node.pointee.start_mark.line) + 1, column = Int(node.pointee.start_mark.column) + 1
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
                if let child = yaml_document_get_node(&document, current.pointee) { items.append(convert(child, document: &document)) }
                item = current + 1
            }
            return YAMLNode(value: .sequence(items), line: line, column: column)
        case YAML_MAPPING_NODE:
            var pairs: [(key: String, keyNode: YAMLNode, value: YAMLNode)] = []
            var pair = node.pointee.data.mapping.pairs.start
            while let current = pair, current < node.pointee.data.mapping.pairs.top {
                if let keyNode = yaml_document_get_node(&document, current.pointee.key),
                   let valueNode = yaml_document_get_node(&document, current.pointee.value) {
                    let key = convert(keyNode, document: &document)
                    pairs.append((key: key.scalar ?? "", keyNode: key, value: convert(valueNode, document: &document)))
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
public struct ManifestError: Error, CustomStringConvertible, Equatable {
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
