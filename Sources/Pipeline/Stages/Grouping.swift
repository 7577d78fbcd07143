import Foundation
import Predict

/// How labelled patches are grouped by source, declared once for every stage that splits them.
enum Grouping {
    static let parameters = [
        ParameterSpec("group_pattern", .string, placeholder: "REGEX",
                      help: "source of a patch from its file name (first capture group, else the match), e.g. 'CRC-Prim-HE-[0-9_]+' for Kather 2016"),
        ParameterSpec("groups", .path, placeholder: "CSV", help: "table 'file,group' naming each patch's source (slide, patient, image)"),
    ]

    /// Each file its own source unless a pattern or a table says which files share one.
    static func rule(_ p: StageParameters) throws -> GroupRule {
        switch (p.string("group_pattern"), p.string("groups")) {
        case (nil, nil): return .perFile
        case let (pattern?, nil):
            guard (try? NSRegularExpression(pattern: pattern)) != nil else { throw StageError.invalid("group_pattern '\(pattern)' is not a regular expression") }
            return .pattern(pattern)
        case let (nil, table?): return .table(table)
        default: throw StageError.invalid("give group_pattern or groups, not both")
        }
    }
}
