import Foundation
import Storage

public enum LabelsError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case malformed(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): \(reason)"
        case let .malformed(path, line, reason): return "\(path):\(line): \(reason)"
        }
    }
}

/// A slide-level labels table: `slide_id,label`, optionally `split` (train/val/test), `fold`
/// (an integer) and `case_id` or `patient` (slides of one patient stay on one side of a split).
public struct SlideLabels: Sendable {
    public struct Row: Sendable, Equatable {
        public var slide: String
        public var label: String
        public var split: Split?
        public var fold: Int?
        public var patient: String
    }

    public enum Split: String, Sendable, Equatable, CaseIterable {
        case train, val, test
    }

    public var path: String
    public var rows: [Row]
    /// Class names in label order: the given order, or sorted.
    public var classes: [String]

    /// Extensions a slide id may carry in a labels table (a feature file's, a slide file's): `s00`,
    /// `s00.h5` and `s00.svs` name one slide.
    static let listedExtensions: Set<String> = ["h5", "hdf5", "svs", "tif", "tiff", "ndpi", "mrxs", "scn", "bif", "vms", "vmu", "svslide"]

    static func slideName(_ listed: String) -> String {
        let url = URL(fileURLWithPath: listed)
        return listedExtensions.contains(url.pathExtension.lowercased()) ? url.deletingPathExtension().lastPathComponent : listed
    }

    public init(path: String, classes given: [String] = []) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LabelsError.unreadable(path: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot read" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw LabelsError.unreadable(path: path, reason: "not UTF-8 text") }
        let records = CSV.records(text)
        guard let headerRecord = records.first, headerRecord.line == 1 else {
            throw LabelsError.malformed(path: path, line: 1, reason: "empty; expected a header 'slide_id,label'")
        }
        let header = headerRecord.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        func column(_ names: String...) -> Int? { names.lazy.compactMap { header.firstIndex(of: $0) }.first }
        guard let slideColumn = column("slide_id", "slide"), let labelColumn = column("label") else {
            throw LabelsError.malformed(path: path, line: 1, reason: "the header \(header) needs 'slide_id' and 'label' columns")
        }
        let splitColumn = column("split"), foldColumn = column("fold"), patientColumn = column("case_id", "patient", "patient_id")
        var rows: [Row] = []
        var seen: [String: Int] = [:]
        for record in records.dropFirst() {
            let number = record.line
            let fields = record.fields.map { $0.trimmingCharacters(in: .whitespaces) }
            func field(_ column: Int?) -> String? { column.flatMap { fields.indices.contains($0) ? fields[$0] : nil } }
            guard let listed = field(slideColumn), !listed.isEmpty else { throw LabelsError.malformed(path: path, line: number, reason: "no slide_id") }
            let slide = Self.slideName(listed)
            guard let label = field(labelColumn), !label.isEmpty else {
                throw LabelsError.malformed(path: path, line: number, reason: "slide '\(slide)' has no label")
            }
            if let first = seen[slide] { throw LabelsError.malformed(path: path, line: number, reason: "slide '\(slide)' is listed again (first on line \(first))") }
            seen[slide] = number
            var split: Split?
            if let text = field(splitColumn), !text.isEmpty {
                guard let value = Split(rawValue: text.lowercased()) ?? (text.lowercased() == "validation" ? .val : nil) else {
                    throw LabelsError.malformed(path: path, line: number, reason: "split '\(text)' is not train, val or test")
                }
                split = value
            }
            var fold: Int?
            if let text = field(foldColumn), !text.isEmpty {
                guard let value = Int(text), value >= 0 else { throw LabelsError.malformed(path: path, line: number, reason: "fold '\(text)' is not a whole number ≥ 0") }
                fold = value
            }
            let patient = field(patientColumn).flatMap { $0.isEmpty ? nil : $0 } ?? slide
            rows.append(Row(slide: slide, label: label, split: split, fold: fold, patient: patient))
        }
        guard !rows.isEmpty else { throw LabelsError.malformed(path: path, line: 2, reason: "no slides listed") }
        if !given.isEmpty {
            if let row = rows.first(where: { !given.contains($0.label) }) {
                throw LabelsError.malformed(path: path, line: seen[row.slide] ?? 0,
                                            reason: "label '\(row.label)' of slide '\(row.slide)' is not one of the classes \(given.joined(separator: ", "))")
            }
            classes = given
        } else {
            classes = Array(Set(rows.map(\.label))).sorted()
        }
        guard classes.count >= 2 else {
            throw LabelsError.malformed(path: path, line: 2, reason: "every slide has the label '\(classes.first ?? "")'; a classifier needs two classes")
        }
        self.path = path
        self.rows = rows
    }

    public func classIndex(of label: String) -> Int? { classes.firstIndex(of: label) }

    /// The row of a bag's slide id, matching `name.svs` to `name` either way.
    public func row(for slide: String) -> Row? {
        let stem = { (s: String) in URL(fileURLWithPath: s).deletingPathExtension().lastPathComponent }
        return rows.first { $0.slide == slide } ?? rows.first { stem($0.slide) == stem(slide) }
    }
}
