import Foundation

/// Minimal RFC 4180 quoting: fields with commas, quotes or newlines are quoted.
public enum CSV {
    public static func field(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public static func row(_ fields: [String]) -> String { fields.map(field).joined(separator: ",") + "\n" }

    /// The records of a whole CSV text (RFC 4180: a quoted field may hold commas, doubled quotes
    /// and line breaks), each with the line it starts on; blank lines are skipped.
    public static func records(_ text: String) -> [(line: Int, fields: [String])] {
        var records: [(line: Int, fields: [String])] = []
        var fields: [String] = [], current = "", quoted = false, line = 1, start = 1, any = false
        var characters = Array(text.replacingOccurrences(of: "\r\n", with: "\n")).makeIterator()
        var pending: Character?
        func endRecord() {
            fields.append(current)
            if any || fields.count > 1 || !current.trimmingCharacters(in: .whitespaces).isEmpty { records.append((start, fields)) }
            fields = []; current = ""; any = false
            start = line
        }
        while let c = pending ?? characters.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    let next = characters.next()
                    if next == "\"" { current.append("\"") } else { quoted = false; pending = next }
                } else {
                    if c == "\n" { line += 1 }
                    current.append(c)
                }
                continue
            }
            switch c {
            case "\"": quoted = true; any = true
            case ",": fields.append(current); current = ""; any = true
            case "\n": line += 1; endRecord()
            default: current.append(c)
            }
        }
        if !current.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }

    /// Splits one line written by `row` back into fields.
    public static func parse(line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var iterator = Array(line).makeIterator()
        var pending: Character? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" { current.append("\"") } else { quoted = false; pending = next }
                    } else { quoted = false }
                } else { current.append(c) }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                fields.append(current); current = ""
            } else {
                current.append(c)
            }
        }
        fields.append(current)
        return fields
    }
}
