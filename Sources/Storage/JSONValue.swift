import Foundation

/// A parsed JSON value, far lighter than Foundation's NSDictionary/NSArray/NSNumber trees
/// (which cost ~30× the text on Linux): large annotation exports are read a feature at a time
/// through `JSONCursor` and kept only as what the reader needs.
public enum JSONValue: Equatable, Sendable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    public subscript(key: String) -> JSONValue? {
        if case let .object(members) = self { return members[key] }
        return nil
    }

    public var objectValue: [String: JSONValue]? { if case let .object(value) = self { return value }; return nil }
    public var arrayValue: [JSONValue]? { if case let .array(value) = self { return value }; return nil }
    public var stringValue: String? { if case let .string(value) = self { return value }; return nil }
    public var numberValue: Double? { if case let .number(value) = self { return value }; return nil }

    /// In JSON's words, for "expected …, found a number".
    public var kind: String {
        switch self {
        case .object: return "an object"
        case .array: return "a list"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "true or false"
        case .null: return "null"
        }
    }
}

/// A position in JSON text that `JSONText.syntaxProblem` has already accepted, read value by
/// value: a caller can walk a large object or list member by member and keep only what it
/// needs. On text that was not checked the results are unspecified (but memory-safe).
public struct JSONCursor {
    private let bytes: [UInt8]
    private var offset = 0

    /// Checks the syntax first; throws `JSONText.Problem` with line and column.
    public init(checking data: Data) throws {
        var bytes = [UInt8](data)
        if let problem = JSONText.syntaxProblem(in: bytes) {
            throw JSONText.Problem(reason: "line \(problem.line), column \(problem.column): \(problem.reason)")
        }
        bytes.append(0)  // strtod stops at a byte that cannot continue a number, even at the end
        self.bytes = bytes
    }

    private var current: UInt8 { offset < bytes.count ? bytes[offset] : 0 }

    private mutating func skipSpace() {
        while offset < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[offset]) { offset += 1 }
    }

    /// What the next value is, without reading it.
    public mutating func peek() -> UInt8 {
        skipSpace()
        return current
    }

    public mutating func isObject() -> Bool { peek() == UInt8(ascii: "{") }
    public mutating func isArray() -> Bool { peek() == UInt8(ascii: "[") }

    /// Walks the object at the cursor: `body` gets each key and must read its value (`value()`,
    /// `skip()` or another walk) before returning.
    public mutating func forEachMember(_ body: (String, inout JSONCursor) throws -> Void) rethrows {
        guard peek() == UInt8(ascii: "{") else { return skip() }
        offset += 1
        while peek() != UInt8(ascii: "}"), offset < bytes.count {
            if current == UInt8(ascii: ",") { offset += 1; continue }
            let key = readString()
            _ = peek()
            offset += 1  // ':'
            try body(key, &self)
        }
        offset += 1
    }

    /// Walks the list at the cursor: `body` gets each index and must read the element.
    public mutating func forEachElement(_ body: (Int, inout JSONCursor) throws -> Void) rethrows {
        guard peek() == UInt8(ascii: "[") else { return skip() }
        offset += 1
        var index = 0
        while peek() != UInt8(ascii: "]"), offset < bytes.count {
            if current == UInt8(ascii: ",") { offset += 1; continue }
            try body(index, &self)
            index += 1
        }
        offset += 1
    }

    public mutating func skip() { _ = value() }

    /// The list of numbers at the cursor, read; nil (and nothing read) for any other value.
    public mutating func numbers() -> [Double]? {
        let start = offset
        guard peek() == UInt8(ascii: "[") else { return nil }
        offset += 1
        var values: [Double] = []
        while peek() != UInt8(ascii: "]"), offset < bytes.count {
            if current == UInt8(ascii: ",") { offset += 1; continue }
            guard current == UInt8(ascii: "-") || (current >= UInt8(ascii: "0") && current <= UInt8(ascii: "9")) else {
                offset = start
                return nil
            }
            values.append(readNumber())
        }
        offset += 1
        return values
    }

    public mutating func value() -> JSONValue {
        switch peek() {
        case UInt8(ascii: "{"):
            var members: [String: JSONValue] = [:]
            forEachMember { key, cursor in members[key] = cursor.value() }
            return .object(members)
        case UInt8(ascii: "["):
            var elements: [JSONValue] = []
            forEachElement { _, cursor in elements.append(cursor.value()) }
            return .array(elements)
        case UInt8(ascii: "\""): return .string(readString())
        case UInt8(ascii: "t"): offset += 4; return .bool(true)
        case UInt8(ascii: "f"): offset += 5; return .bool(false)
        case UInt8(ascii: "n"): offset += 4; return .null
        default: return .number(readNumber())
        }
    }

    private mutating func readNumber() -> Double {
        bytes.withUnsafeBufferPointer { buffer in
            let start = UnsafeRawPointer(buffer.baseAddress! + offset).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(start, &end)
            let consumed = end.map { UnsafeRawPointer($0) - UnsafeRawPointer(start) } ?? 0
            offset += max(consumed, 1)
            return value
        }
    }

    private mutating func readString() -> String {
        offset += 1  // the opening quote
        var scalars = String.UnicodeScalarView()
        var run = offset
        func flush(upTo end: Int) {
            if end > run { scalars.append(contentsOf: String(decoding: bytes[run..<end], as: UTF8.self).unicodeScalars) }
        }
        while offset < bytes.count, bytes[offset] != UInt8(ascii: "\"") {
            guard bytes[offset] == UInt8(ascii: "\\") else { offset += 1; continue }
            flush(upTo: offset)
            offset += 1
            switch current {
            case UInt8(ascii: "u"):
                var code = hex4(at: offset + 1)
                offset += 5
                if (0xD800..<0xDC00).contains(code), current == UInt8(ascii: "\\"), bytes[min(offset + 1, bytes.count - 1)] == UInt8(ascii: "u") {
                    let low = hex4(at: offset + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        offset += 6
                    }
                }
                scalars.append(UnicodeScalar(code) ?? "\u{FFFD}")
            case UInt8(ascii: "n"): scalars.append("\n"); offset += 1
            case UInt8(ascii: "t"): scalars.append("\t"); offset += 1
            case UInt8(ascii: "r"): scalars.append("\r"); offset += 1
            case UInt8(ascii: "b"): scalars.append("\u{08}"); offset += 1
            case UInt8(ascii: "f"): scalars.append("\u{0C}"); offset += 1
            default: scalars.append(UnicodeScalar(current)); offset += 1
            }
            run = offset
        }
        flush(upTo: offset)
        offset += 1  // the closing quote
        return String(scalars)
    }

    private func hex4(at position: Int) -> UInt32 {
        guard position + 4 <= bytes.count else { return 0xFFFD }
        return UInt32(String(decoding: bytes[position..<(position + 4)], as: UTF8.self), radix: 16) ?? 0xFFFD
    }
}
