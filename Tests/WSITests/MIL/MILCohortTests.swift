import Foundation
@testable import MIL
import NN
import Predict
import Storage
import XCTest
import Results

/// Attention MIL on bags made of real tissue: LC25000 patches (Tests/Data/mil-lc25000, encoder
/// features of this project's tiny96 model) in the classic set-up, where a negative bag holds 50–150
/// benign patches of one organ and a positive bag also holds 3–5 % carcinoma patches.
/// Train and test bags draw from disjoint halves of the patch files (LC25000 has no source ids, so
/// augmented near-duplicates may still straddle the halves; see its SOURCE.md).
final class MILCohortTests: XCTestCase {
    static func loadPools() throws -> PatchCohort.Pools {
        let path = TestData.path("mil-lc25000/features.safetensors")
        let (tensors, metadata) = try Safetensors.read(path: path)
        let features = try XCTUnwrap(tensors["features"])
        let classes = try JSONDecoder().decode([String].self, from: Data(try XCTUnwrap(metadata["classes"]).utf8))
        let width = features.shape[1]
        return PatchCohort.Pools(features: (0..<features.shape[0]).map { Array(features.floats[($0 * width)..<(($0 + 1) * width)]) }, classes: classes)
    }

    func runCohort(organ: String) throws -> PatchCohort.Outcome {
        let outcome = try PatchCohort.run(try Self.loadPools(), organ: organ, folder: TestData.scratchDirectory("cohort-" + organ))
        print(String(format: "MIL cohort (%@): held-out bag AUC %.3f, balanced accuracy %.3f, attention instance AUC %.3f, %d epochs (best %d)",
                     organ, outcome.bagAUC, outcome.balancedAccuracy, outcome.instanceAUC, outcome.epochs, outcome.bestEpoch))
        return outcome
    }

    /// Lung: the MIL machinery end to end on real tissue. Not evidence for the features: a
    /// colour histogram and a random encoder solve this cohort as well (`wsi bench mil-cohort`).
    func testSeparatesHeldOutLungBagsAndAttendsToCarcinoma() throws {
        let result = try runCohort(organ: "lung")
        XCTAssertGreaterThanOrEqual(result.bagAUC, 0.95, "held-out bag AUC")
        XCTAssertGreaterThanOrEqual(result.instanceAUC, 0.9, "instance-level AUC of attention")
    }

    /// Colon: the same encoder separates colon carcinoma from benign colon patches far less well
    /// (linear AUC 0.90 on single patches), so a bag's few carcinoma patches are hard to call and
    /// the bag AUC stays low (0.66 measured; a colour histogram reaches 0.83); attention still ranks
    /// carcinoma above benign tissue (0.80 over three cohorts; histogram 0.71, random encoder 0.59).
    func testColonAttentionFindsCarcinomaWithWeakerFeatures() throws {
        let result = try runCohort(organ: "colon")
        XCTAssertGreaterThanOrEqual(result.instanceAUC, 0.75, "instance-level AUC of attention")
    }

    func testTrainingIsDeterministicFromSeed() throws {
        let pools = try Self.loadPools()
        var generator = SeededGenerator(seed: 5)
        let bags = PatchCohort.makeBags(pools, count: 12, half: 0, prefix: "s", generator: &generator)
        let folder = TestData.scratchDirectory()
        try PatchCohort.write(bags.enumerated().map { ($1, $0 < 8 ? .train : .val) }, to: folder)
        let (cohort, split) = try PatchCohort.read(folder)
        var settings = MILTrainingSettings()
        settings.hidden = 16
        settings.attentionWidth = 8
        settings.epochs = 3
        let runs = try (0..<2).map { _ in try MILTrainer(cohort: cohort, settings: settings).train(split, index: 0).model.parameters.map(\.value.array) }
        XCTAssertEqual(runs[0], runs[1])
    }

    func testStratifiedFoldsKeepPatientsTogether() throws {
        // 30 slides of 12 patients, two labels.
        let patients = (0..<30).map { "p\($0 % 12)" }
        let labels = (0..<30).map { ($0 % 12) < 5 ? 1 : 0 }
        let splits = try MILSplits.make(labels: labels, patients: patients, splits: Array(repeating: nil, count: 30),
                                        folds: Array(repeating: nil, count: 30), classes: 2, k: 4, seed: 3)
        XCTAssertEqual(splits.count, 4)
        XCTAssertEqual(Set(splits.flatMap(\.test)), Set(0..<30), "every slide is tested once")
        for split in splits {
            XCTAssertTrue(Set(split.train).isDisjoint(with: split.test) && Set(split.train).isDisjoint(with: split.validation))
            let trainPatients = Set(split.train.map { patients[$0] })
            XCTAssertTrue((split.test + split.validation).allSatisfy { !trainPatients.contains(patients[$0]) })
            XCTAssertEqual(Set(split.test.map { labels[$0] }), [0, 1], "\(split.name): both classes in test")
        }
        XCTAssertThrowsError(try MILSplits.make(labels: [0, 1, 0], patients: ["a", "b", "c"], splits: [nil, nil, nil], folds: [nil, nil, nil],
                                                classes: 2, k: 5, seed: 0)) {
            XCTAssertTrue("\($0)".contains("5 folds need at least 5 patients"), "\($0)")
        }
    }

    func testLabelsTableErrorsNameFileAndLine() throws {
        let folder = TestData.scratchDirectory()
        func refusal(_ text: String, classes: [String] = []) -> String {
            try? text.write(toFile: folder + "/l.csv", atomically: true, encoding: .utf8)
            do { _ = try SlideLabels(path: folder + "/l.csv", classes: classes); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(refusal("slide,diagnosis\na,x\n").contains("l.csv:1: the header"))
        XCTAssertTrue(refusal("slide_id,label\na,x\nb,y\na,y\n").contains("l.csv:4: slide 'a' is listed again (first on line 2)"))
        XCTAssertTrue(refusal("slide_id,label\na,x\nb,\n").contains("l.csv:3: slide 'b' has no label"))
        XCTAssertTrue(refusal("slide_id,label\na,x\nb,x\n").contains("a classifier needs two classes"))
        XCTAssertTrue(refusal("slide_id,label,split\na,x,train\nb,y,tset\n").contains("l.csv:3: split 'tset'"))
        XCTAssertTrue(refusal("slide_id,label\na,x\nb,z\n", classes: ["x", "y"]).contains("l.csv:3: label 'z' of slide 'b'"))
        let table = try SlideLabels(path: { try! "slide_id,label,case_id\nA.svs,y,p1\nB,x,p1\n".write(toFile: folder + "/ok.csv", atomically: true, encoding: .utf8); return folder + "/ok.csv" }())
        XCTAssertEqual(table.classes, ["x", "y"])
        XCTAssertEqual(table.row(for: "A")?.patient, "p1")
    }

    func testBagErrorsNameTheSlide() throws {
        let folder = TestData.scratchDirectory()
        let writer = try HDF5Writer(path: folder + "/empty.h5")
        try writer.write("features", Matrix<Float>(rows: 0, columns: 4, values: []))
        try writer.close()
        XCTAssertThrowsError(try FeatureBag.read(slide: "empty", path: folder + "/empty.h5")) {
            XCTAssertTrue("\($0)".contains("the bag of slide 'empty' is empty"), "\($0)")
        }
        let nan = try HDF5Writer(path: folder + "/nan.h5")
        try nan.write("features", Matrix<Float>(rows: 1, columns: 2, values: [0, .nan]))
        try nan.close()
        XCTAssertThrowsError(try FeatureBag.read(slide: "nan", path: folder + "/nan.h5")) {
            XCTAssertTrue("\($0)".contains("feature 1 of tile 0 is not a number"), "\($0)")
        }
        // A file declaring an extent no bag has (HDF5 allocates lazily, so it is 2 KB on disk).
        XCTAssertThrowsError(try FeatureBag.read(slide: "huge", path: TestData.path("hostile/huge-extent.h5"))) {
            XCTAssertTrue("\($0)".contains("1099511627776×1099511627776, more than the 2147483648 values read at once"), "\($0)")
        }
        XCTAssertEqual(ROC.auc(scores: [0.1, 0.4, 0.35, 0.8], positive: [false, false, true, true]), 0.75)
        XCTAssertEqual(ROC.auc(scores: [1, 1], positive: [true, false]), 0.5)
    }
}
