import Foundation
import Heatmap
import Imaging
import NN
@testable import Predict
import SDMAE
import Storage
import Tiling
import XCTest
import Results

final class PredictTests: XCTestCase {
    static var encoderConfig: SDMAEConfig {
        SDMAEConfig(imageSize: 32, patchSize: 8, width: 24, depth: 1, heads: 2, decoderWidth: 8, decoderDepth: 1,
                    decoderHeads: 2, headHidden: 8, bottleneck: 8, prototypes: 8)
    }

    /// Labelled by slide of origin (the shared data's convention): CMU-1 skin vs the TCGA section.
    static func labelledFolder(_ dir: String) throws -> String {
        var options = TilingOptions(grid: TileGridSpec(resolution: .level(0), size: 128))
        options.format = .png
        options.showProgress = false
        options.tissueThreshold = 0.8
        let runs = [("cmu1-skin", TestData.cmuSVS), ("tcga-tumour", TestData.tcgaSVS)]
        try FileManager.default.createDirectory(atPath: dir + "/labelled", withIntermediateDirectories: true)
        for (label, slide) in runs {
            try TileExtractor(options: options).run(slidePath: slide, outputDirectory: dir + "/tiles-" + label)
            try FileManager.default.moveItem(atPath: dir + "/tiles-" + label + "/patches", toPath: dir + "/labelled/" + label)
        }
        return dir + "/labelled"
    }

    func testLabelledFoldersAndErrors() throws {
        let dir = TestData.scratchDirectory()
        XCTAssertThrowsError(try LabelledPatches(root: dir)) { error in
            guard case .notLabelled = error as? ClassifierError else { return XCTFail("\(error)") }
        }
        try FileManager.default.createDirectory(atPath: dir + "/a", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/b", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestData.path("histolab-tiles/no-tissue.png"), toPath: dir + "/a/x.png")
        XCTAssertThrowsError(try LabelledPatches(root: dir)) { error in
            XCTAssertEqual(error as? ClassifierError, .notLabelled(path: dir + "/b", reason: "class folder holds no PNG/JPEG patches or shards"))
        }
    }

    func testReportMetrics() {
        let report = ClassificationReport(truth: [0, 0, 0, 1], predicted: [0, 0, 1, 1], classes: ["a", "b"])
        XCTAssertEqual(report.accuracy, 0.75)
        XCTAssertEqual(report.recall, [2.0 / 3, 1])
        XCTAssertEqual(report.precision, [1, 0.5])
        XCTAssertEqual(report.balancedAccuracy, (2.0 / 3 + 1) / 2, accuracy: 1e-12)
        XCTAssertEqual(report.confusion, [[2, 1], [0, 1]])
        let precision = 1.0, recall = 2.0 / 3
        XCTAssertEqual(report.f1[0], 2 * precision * recall / (precision + recall), accuracy: 1e-12)
        XCTAssertEqual(report.macroF1, (report.f1[0] + report.f1[1]) / 2, accuracy: 1e-12)
    }

    /// Folds keep every source whole and spread each class's sources over the folds.
    func testGroupedFoldsNeverSplitASource() {
        // 6 sources per class, 4 crops each: crops of one source must share a fold.
        let groups = (0..<48).map { "source-\($0 / 4)" }, labels = (0..<48).map { $0 < 24 ? 0 : 1 }
        for folds in [2, 3, 5] {
            let fold = GroupedFolds.assign(groups: groups, labels: labels, folds: folds, seed: 3)
            for source in Set(groups) {
                XCTAssertEqual(Set(groups.indices.filter { groups[$0] == source }.map { fold[$0] }).count, 1, "\(source) split")
            }
            for f in 0..<folds {
                let members = labels.indices.filter { fold[$0] == f }
                XCTAssertFalse(members.isEmpty)
                if folds <= 3 { XCTAssertEqual(Set(members.map { labels[$0] }), [0, 1], "fold \(f) holds both classes") }
            }
            XCTAssertEqual(fold, GroupedFolds.assign(groups: groups, labels: labels, folds: folds, seed: 3), "deterministic")
        }
    }

    /// End to end on real slides: features of the (random-init) encoder separate the two stains,
    /// the classifier round-trips, predictions from the shard and from the slide agree, and the
    /// outputs re-read for heatmaps and labels.
    func testClassifierAndSlidePredictions() throws {
        let dir = TestData.scratchDirectory()
        let model = SDMAEModel(config: Self.encoderConfig, seed: 11)
        let patches = try LabelledPatches(root: try Self.labelledFolder(dir))
        XCTAssertEqual(patches.classes, ["cmu1-skin", "tcga-tumour"])
        var settings = LinearProbe.TrainingSettings()
        settings.epochs = 200
        let result = try ClassifierTraining.run(encoder: model, patches: patches, groups: try patches.groups(by: .perFile), crops: false,
                                                validationFraction: 0.25, seed: 2, settings: settings,
                                                showProgress: false)
        XCTAssertGreaterThan(result.linear.balancedAccuracy, 0.8, result.linear.text)
        XCTAssertGreaterThan(result.knn.balancedAccuracy, 0.7, result.knn.text)

        let clfPath = dir + "/clf.safetensors"
        try result.probe.write(to: clfPath)
        let probe = try LinearProbe.read(path: clfPath)
        XCTAssertEqual(probe, result.probe)
        XCTAssertThrowsError(try SlidePredictor(encoder: SDMAEModel(config: PretrainingTests.smallConfig), probe: probe, classifierPath: clfPath)) { error in
            guard case .incompatible = error as? ClassifierError else { return XCTFail("\(error)") }
        }

        // Tile the CMU slide twice: as a shard, and coordinates only (tiles re-read from the slide).
        var tiling = TilingOptions(grid: TileGridSpec(resolution: .level(0), size: 128))
        tiling.showProgress = false
        tiling.format = .shard
        try TileExtractor(options: tiling).run(slidePath: TestData.cmuSVS, outputDirectory: dir + "/shard/CMU-1-Small-Region")
        tiling.format = .none
        try TileExtractor(options: tiling).run(slidePath: TestData.cmuSVS, outputDirectory: dir + "/plain/CMU-1-Small-Region")
        var predictor = try SlidePredictor(encoder: model, probe: probe, classifierPath: clfPath)
        predictor.showProgress = false
        let a = try predictor.run(slidePath: TestData.cmuSVS, tileDirectory: dir + "/shard/CMU-1-Small-Region", outputDirectory: dir + "/pa")
        let b = try predictor.run(slidePath: TestData.cmuSVS, tileDirectory: dir + "/plain/CMU-1-Small-Region", outputDirectory: dir + "/pb")
        XCTAssertEqual(a.tiles, b.tiles)
        XCTAssertGreaterThan(a.tiles, 50)
        let fromShard = try SlidePredictions(directory: dir + "/pa"), fromSlide = try SlidePredictions(directory: dir + "/pb")
        XCTAssertEqual(fromShard.probabilities, fromSlide.probabilities, "same pixels, same predictions")
        XCTAssertEqual(fromShard.footprint, 128)
        XCTAssertEqual(fromShard.slideWidth, 2220)
        for i in 0..<fromShard.origins.count {
            XCTAssertEqual(fromShard.probabilities[2 * i] + fromShard.probabilities[2 * i + 1], 1, accuracy: 1e-5)
        }
        XCTAssertGreaterThan(a.meanProbabilities[0], 0.7, "the CMU slide reads as CMU skin")
        let label = Aggregation.label(slide: "cmu", probabilities: fromShard.probabilities, classes: fromShard.classes, rule: .topK(20))
        XCTAssertEqual(label.label, "cmu1-skin")
        XCTAssertThrowsError(try fromShard.scores(of: "lymphocyte", path: "p.h5")) { error in
            XCTAssertTrue("\(error)".contains("lymphocyte"))
        }
        let csvLines = try String(contentsOfFile: dir + "/pa/" + PredictionFiles.csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csvLines.first, "x,y,p_cmu1-skin,p_tcga-tumour,predicted")
        XCTAssertEqual(csvLines.count, a.tiles + 1)

        XCTAssertThrowsError(try predictor.run(slidePath: TestData.tcgaSVS, tileDirectory: dir + "/missing", outputDirectory: dir + "/pc")) { error in
            XCTAssertTrue("\(error)".contains(dir + "/missing/tiling.json"))
        }
        XCTAssertThrowsError(try SlidePredictions(directory: dir + "/nothing")) { error in
            XCTAssertTrue("\(error)".contains(dir + "/nothing/predictions.h5"))
        }
    }
}
