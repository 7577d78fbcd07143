import Foundation
import NN

/// One train/validation/test partition of a cohort (indices into its slides). Validation, when
/// present, decides early stopping; test is touched once, after training.
public struct MILSplit: Sendable, Equatable {
    public var name: String
    public var train: [Int]
    public var validation: [Int]
    public var test: [Int]

    public init(name: String, train: [Int], validation: [Int], test: [Int]) {
        (self.name, self.train, self.validation, self.test) = (name, train, validation, test)
    }
}

public enum MILSplitError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    public var description: String { switch self { case let .invalid(message): return message } }
}

/// How a cohort is partitioned: the labels table's `split` column, its `fold` column, or k folds
/// stratified by label whose units are patients, so slides of one patient never straddle sides.
public enum MILSplits {
    /// `labels[i]` and `patients[i]` describe slide i. With k folds, fold f is the test set, fold
    /// f+1 the validation set (from three folds on), and the rest trains.
    public static func make(labels: [Int], patients: [String], splits: [SlideLabels.Split?], folds: [Int?], classes: Int,
                            k: Int, seed: UInt64) throws -> [MILSplit] {
        let slides = labels.indices
        if splits.contains(where: { $0 != nil }) {
            if let missing = slides.first(where: { splits[$0] == nil }) {
                throw MILSplitError.invalid("slide \(missing + 1) of the labels table has no split while others do; give every slide one")
            }
            let split = MILSplit(name: "split", train: slides.filter { splits[$0] == .train },
                                 validation: slides.filter { splits[$0] == .val }, test: slides.filter { splits[$0] == .test })
            return [try checked(split, labels: labels, patients: patients, classes: classes)]
        }
        var assignment: [Int]
        if folds.contains(where: { $0 != nil }) {
            if let missing = slides.first(where: { folds[$0] == nil }) {
                throw MILSplitError.invalid("slide \(missing + 1) of the labels table has no fold while others do; give every slide one")
            }
            let values = Array(Set(folds.compactMap { $0 })).sorted()
            assignment = folds.map { values.firstIndex(of: $0!)! }
        } else {
            assignment = try stratifiedFolds(labels: labels, patients: patients, classes: classes, k: k, seed: seed)
        }
        let count = (assignment.max() ?? 0) + 1
        guard count >= 2 else { throw MILSplitError.invalid("cross-validation needs at least 2 folds; the labels table gives \(count)") }
        return try (0..<count).map { f in
            let validationFold = count >= 3 ? (f + 1) % count : nil
            let split = MILSplit(name: "fold-\(f)",
                                 train: slides.filter { assignment[$0] != f && assignment[$0] != validationFold },
                                 validation: slides.filter { assignment[$0] == validationFold },
                                 test: slides.filter { assignment[$0] == f })
            return try checked(split, labels: labels, patients: patients, classes: classes)
        }
    }

    /// Patients dealt class by class (in a seeded order) to the fold that has the fewest slides
    /// of that class, then the fewest slides overall.
    static func stratifiedFolds(labels: [Int], patients: [String], classes: Int, k: Int, seed: UInt64) throws -> [Int] {
        var slidesOf: [String: [Int]] = [:]
        for (i, patient) in patients.enumerated() { slidesOf[patient, default: []].append(i) }
        let units = slidesOf.keys.sorted()
        guard units.count >= k else {
            throw MILSplitError.invalid("\(k) folds need at least \(k) patients (or slides); the labels table has \(units.count)")
        }
        var generator = SeededGenerator(seed: seed)
        var perClass = [[String]](repeating: [], count: classes)
        for unit in units {
            let unitLabels = slidesOf[unit]!.map { labels[$0] }
            let majority = (0..<classes).max { a, b in unitLabels.filter { $0 == a }.count < unitLabels.filter { $0 == b }.count } ?? 0
            perClass[majority].append(unit)
        }
        var assignment = [Int](repeating: 0, count: labels.count)
        var classCounts = [[Int]](repeating: [Int](repeating: 0, count: k), count: classes)
        var totals = [Int](repeating: 0, count: k)
        for c in 0..<classes {
            for unit in perClass[c].shuffled(using: &generator) {
                let fold = (0..<k).min { a, b in (classCounts[c][a], totals[a], a) < (classCounts[c][b], totals[b], b) }!
                for slide in slidesOf[unit]! {
                    assignment[slide] = fold
                    classCounts[c][fold] += 1
                    totals[fold] += 1
                }
            }
        }
        return assignment
    }

    private static func checked(_ split: MILSplit, labels: [Int], patients: [String], classes: Int) throws -> MILSplit {
        let present = Set(split.train.map { labels[$0] })
        guard present.count == classes else {
            throw MILSplitError.invalid("\(split.name): the training slides lack class(es) \((0..<classes).filter { !present.contains($0) }); "
                                        + "add slides of every class or use fewer folds")
        }
        let trainPatients = Set(split.train.map { patients[$0] })
        if let shared = (split.validation + split.test).first(where: { trainPatients.contains(patients[$0]) }) {
            throw MILSplitError.invalid("\(split.name): patient '\(patients[shared])' has slides in training and in evaluation; "
                                        + "give all of a patient's slides the same split or fold")
        }
        return split
    }
}
