import Foundation

/// JSON read from a user's file, with errors a person can act on. Foundation says only "The
/// data is not in the correct format"; these say where (line and column) and what is wrong:
/// NaN or Infinity (which Python's json writes and JSON has not), a number past Double's
/// range, a text that ends early, or valid JSON of another shape than the one expected.
public enum JSONText {
    public struct Problem: Error, CustomStringConvertible, Equatable {
        public let reason: String
        public var description: String { reason }
    }

    /// Nesting deeper than this is refused rather than followed (the check is recursive).
    public static let maximumDepth = 512

    /// Decodes `type`, or throws a `Problem` naming the position of a syntax error or the value
    /// whose shape differs from what `type` expects.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        if let problem = syntaxError(in: data) { throw Problem(reason: problem) }
        do { return try JSONDecoder().decode(type, from: data) } catch let error as DecodingError {
            throw Problem(reason: shapeError(error))
        }
    }

    /// "line 3, column 14: …" for the first syntax error in `data`; nil when it is JSON.
    public static func syntaxError(in data: Data) -> String? {
        syntaxProblem(in: [UInt8](data)).map { "line \($0.line), column \($0.column): \($0.reason)" }
    }

    /// The first syntax error in `bytes`, where it is (1-based, columns in characters) and why.
    public static func syntaxProblem(in bytes: [UInt8]) -> (line: Int, column: Int, reason: String)? {
        var scanner = Scanner(bytes: bytes)
        do {
            scanner.skipSpace()
            guard scanner.offset < bytes.count else { return (1, 1, "the file is empty") }
            try scanner.value(depth: 0)
            scanner.skipSpace()
            guard scanner.offset == bytes.count else { throw Scanner.Failure(offset: scanner.offset, reason: "more text after the JSON value ends") }
            return nil
        } catch let failure as Scanner.Failure {
            return (failure.line(in: bytes), failure.column(in: bytes), failure.reason)
        } catch {
            return (1, 1, "not JSON")
        }
    }

    /// Which value has the wrong shape, in the words of the file ("at 'depth': expected a number").
    static func shapeError(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            let text = keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return text.isEmpty ? "the top level" : "'\(text)'"
        }
        func name(_ type: Any.Type) -> String {
            switch type {
            case is Int.Type, is Int64.Type, is Int32.Type, is UInt64.Type, is Double.Type, is Float.Type: return "a number"
            case is String.Type: return "a string"
            case is Bool.Type: return "true or false"
            default: return String(describing: type).hasPrefix("Array") ? "a list" : "an object"
            }
        }
        switch error {
        case let .keyNotFound(key, context): return "missing \(path(context.codingPath + [key]))"
        case let .typeMismatch(type, context): return "at \(path(context.codingPath)): expected \(name(type))"
        case let .valueNotFound(type, context): return "at \(path(context.codingPath)): expected \(name(type)), found null"
        case let .dataCorrupted(context): return "at \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "not the expected JSON"
        }
    }
}

/// A recursive-descent check of RFC 8259 that stops at the first error, remembering where.
private struct Scanner {
    struct Failure: Error {
        let offset: Int
        let reason: String

        func line(in bytes: [UInt8]) -> Int { 1 + bytes[..<min(offset, bytes.count)].lazy.filter { $0 == 0x0A }.count }

        /// Counted in characters: UTF-8 continuation bytes do not start one.
        func column(in bytes: [UInt8]) -> Int {
            let end = min(offset, bytes.count)
            let start = (bytes[..<end].lastIndex(of: 0x0A) ?? -1) + 1
            return 1 + bytes[start..<end].lazy.filter { $0 & 0xC0 != 0x80 }.count
        }
    }

    let bytes: [UInt8]
    var offset = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    private var current: UInt8? { offset < bytes.count ? bytes[offset] : nil }

    mutating func skipSpace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { offset += 1 }
    }

    private func fail(_ reason: String, at position: Int? = nil) -> Failure { Failure(offset: position ?? offset, reason: reason) }

    private func startsWith(_ word: String) -> Bool {
        let utf8 = Array(word.utf8)
        return offset + utf8.count <= bytes.count && Array(bytes[offset..<(offset + utf8.count)]) == utf8
    }

    private func describeCurrent() -> String {
        guard let byte = current else { return "the end of the text" }
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(UnicodeScalar(byte)))'" }
        return String(format: "byte 0x%02X", byte)
    }

    mutating func value(depth: Int) throws {
        skipSpace()
        guard depth < JSONText.maximumDepth else { throw fail("nested more than \(JSONText.maximumDepth) levels deep") }
        guard let byte = current else { throw fail("the text ends where a value should be") }
        switch byte {
        case UInt8(ascii: "{"): try object(depth: depth)
        case UInt8(ascii: "["): try array(depth: depth)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            if startsWith("-Infinity") { throw fail("-Infinity is not a JSON number (write null, or a finite number)") }
            try number()
        default:
            for word in ["true", "false", "null"] where startsWith(word) {
                offset += word.utf8.count
                return
            }
            for word in ["NaN", "Infinity", "nan", "inf"] where startsWith(word) {
                throw fail("\(word) is not a JSON number (write null, or a finite number)")
            }
            throw fail("expected a value, found \(describeCurrent())")
        }
    }

    private mutating func object(depth: Int) throws {
        let opened = offset
        offset += 1
        skipSpace()
        if current == UInt8(ascii: "}") { offset += 1; return }
        while true {
            skipSpace()
            guard current != nil else { throw unclosed("object", opened: opened) }
            guard current == UInt8(ascii: "\"") else { throw fail("expected a quoted key, found \(describeCurrent())") }
            try string()
            skipSpace()
            guard current == UInt8(ascii: ":") else {
                throw current == nil ? unclosed("object", opened: opened) : fail("expected ':' after the key, found \(describeCurrent())")
            }
            offset += 1
            try value(depth: depth + 1)
            skipSpace()
            switch current {
            case UInt8(ascii: ","): offset += 1
            case UInt8(ascii: "}"): offset += 1; return
            case nil: throw unclosed("object", opened: opened)
            default: throw fail("expected ',' or '}' in the object, found \(describeCurrent())")
            }
        }
    }

    private mutating func array(depth: Int) throws {
        let opened = offset
        offset += 1
        skipSpace()
        if current == UInt8(ascii: "]") { offset += 1; return }
        while true {
            guard current != nil else { throw unclosed("list", opened: opened) }
            try value(depth: depth + 1)
            skipSpace()
            switch current {
            case UInt8(ascii: ","): offset += 1; skipSpace()
            case UInt8(ascii: "]"): offset += 1; return
            case nil: throw unclosed("list", opened: opened)
            default: throw fail("expected ',' or ']' in the list, found \(describeCurrent())")
            }
        }
    }

    private func unclosed(_ what: String, opened: Int) -> Failure {
        let at = Failure(offset: opened, reason: "")
        return fail("the text ends before the \(what) opened at line \(at.line(in: bytes)), column \(at.column(in: bytes)) is closed (truncated?)")
    }

    private mutating func string() throws {
        let opened = offset
        offset += 1
        while let byte = current {
            switch byte {
            case UInt8(ascii: "\""): offset += 1; return
            case UInt8(ascii: "\\"):
                offset += 1
                guard let escaped = current else { break }
                if escaped == UInt8(ascii: "u") {
                    let hex = bytes[(offset + 1)..<min(offset + 5, bytes.count)]
                    guard hex.count == 4, hex.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }) else {
                        throw fail("\\u must be followed by four hexadecimal digits")
                    }
                    offset += 5
                } else {
                    guard Array(#""\/bfnrt"#.utf8).contains(escaped) else { throw fail("\\\(describeCurrent()) is not a JSON escape") }
                    offset += 1
                }
            case 0..<0x20: throw fail("a line break or control character inside a string (write \\n)")
            default: offset += 1
            }
        }
        let at = Failure(offset: opened, reason: "")
        throw fail("the string opened at line \(at.line(in: bytes)), column \(at.column(in: bytes)) never ends")
    }

    private mutating func number() throws {
        let start = offset
        func digits() -> Int {
            let from = offset
            while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { offset += 1 }
            return offset - from
        }
        if current == UInt8(ascii: "-") { offset += 1 }
        let leadingZero = current == UInt8(ascii: "0")
        let integer = digits()
        guard integer > 0 else { throw fail("expected digits after '-', found \(describeCurrent())") }
        if leadingZero && integer > 1 { throw fail("a number with a leading zero", at: start) }
        if current == UInt8(ascii: ".") {
            offset += 1
            guard digits() > 0 else { throw fail("expected digits after the decimal point, found \(describeCurrent())") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            offset += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { offset += 1 }
            guard digits() > 0 else { throw fail("expected digits in the exponent, found \(describeCurrent())") }
        }
        let text = String(decoding: bytes[start..<offset], as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw fail("\(text) is beyond the range of a number (about ±1.8e308)", at: start)
        }
    }
}
