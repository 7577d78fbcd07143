/// A command line mistake: printed with the command's usage, exit status 2.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Options of the form `--name value` or `--name=value`, flags `--name`, and positionals.
/// Each accessor consumes what it reads, so anything left over is reported as unknown.
struct Arguments {
    private var tokens: [String]

    init(_ tokens: [String]) { self.tokens = tokens }

    /// The first argument, without consuming it (for sub-subcommands such as `bench train`).
    var first: String? { tokens.first }

    var wantsHelp: Bool { tokens.contains("--help") || tokens.contains("-h") }

    mutating func flag(_ name: String) -> Bool {
        guard let i = tokens.firstIndex(of: "--\(name)") else { return false }
        tokens.remove(at: i)
        return true
    }

    mutating func string(_ name: String) throws -> String? {
        if let i = tokens.firstIndex(where: { $0.hasPrefix("--\(name)=") }) {
            let value = String(tokens[i].dropFirst(name.count + 3))
            tokens.remove(at: i)
            return value
        }
        guard let i = tokens.firstIndex(of: "--\(name)") else { return nil }
        guard i + 1 < tokens.count, !tokens[i + 1].hasPrefix("--") else { throw UsageError("--\(name) needs a value") }
        let value = tokens[i + 1]
        tokens.removeSubrange(i...(i + 1))
        return value
    }

    mutating func strings(_ name: String) throws -> [String] {
        var values: [String] = []
        while let value = try string(name) { values.append(value) }
        return values
    }

    mutating func int(_ name: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let text = try string(name) else { return nil }
        guard let value = Int(text) else { throw UsageError("--\(name) expects an integer, got '\(text)'") }
        if let range, !range.contains(value) {
            throw UsageError("--\(name) must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
        return value
    }

    mutating func double(_ name: String, range: ClosedRange<Double>? = nil) throws -> Double? {
        guard let text = try string(name) else { return nil }
        guard let value = Double(text), value.isFinite else { throw UsageError("--\(name) expects a number, got '\(text)'") }
        if let range, !range.contains(value) {
            throw UsageError("--\(name) must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
        return value
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ name: String, _: T.Type) throws -> T? where T.RawValue == String {
        guard let text = try string(name) else { return nil }
        guard let value = T(rawValue: text) else {
            throw UsageError("--\(name) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
        }
        return value
    }

    /// The remaining positional arguments; fails on any option nobody asked for.
    mutating func positionals() throws -> [String] {
        if let unknown = tokens.first(where: { $0.hasPrefix("--") }) { throw UsageError("unknown option \(unknown)") }
        defer { tokens = [] }
        return tokens
    }
}
