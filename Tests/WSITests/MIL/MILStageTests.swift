import Foundation
import Heatmap
import Imaging
@testable import MIL
import NN
@testable import Pipeline
import Predict
import SlideIO
import Storage
import Tiling
import XCTest
import Results

/// train-mil, predict-mil and attention heatmaps through the stage commands, on real slides and on
/// CLAM-layout feature files.
final class MILStageTests: XCTestCase {
    /// Both real slides: tiles → features → MIL from slide labels → labels, attention, strips, heatmaps.
    func testSlideLabelsToAttentionHeatmapsOnRealSlides() throws {
        let dir = TestData.scratchDirectory()
        let out = dir + "/out"
        let (checkpoint, _) = try StageFixtures.tinyModel(in: dir)
        for slide in [TestData.cmuSVS, TestData.tcgaSVS] {
            XCTAssertEqual(try StageFixtures.stageCommand(TileStage.self, [slide, "--out", out, "--size", "256", "--format", "shard"]).run().completed, 1)
            XCTAssertEqual(try StageFixtures.stageCommand(FeaturesStage.self, [slide, "--out", out, "--tiles", out + "/tile",
                                                                              "--checkpoint", checkpoint]).run().completed, 1)
        }
        try "slide_id,label,split\nCMU-1-Small-Region,a,train\ntcga-cr-7395-01a-01-ts1,b,train\n"
            .write(toFile: dir + "/labels.csv", atomically: true, encoding: .utf8)
        let train = ["--out", out, "--features", out + "/features", "--labels", dir + "/labels.csv", "--epochs", "3", "--hidden", "16",
                     "--attention-width", "8", "--k-sample", "4"]
        XCTAssertEqual(try StageFixtures.stageCommand(TrainMILStage.self, train).run().completed, 1)
        XCTAssertEqual(try StageFixtures.stageCommand(TrainMILStage.self, train).run().upToDate, 1, "a second run finds the work done")
        let model = try AttentionMIL.load(path: out + "/train-mil/split.safetensors")
        XCTAssertEqual(model.config.classNames, ["a", "b"])
        XCTAssertEqual(model.config.embedDim, 8)

        XCTAssertEqual(try StageFixtures.stageCommand(PredictMILStage.self, ["--out", out, "--features", out + "/features",
                                                                            "--model", out + "/train-mil", "--slides", TestData.cmuSVS,
                                                                            "--slides", TestData.tcgaSVS]).run().completed, 1)
        let table = try String(contentsOfFile: out + "/predict-mil/labels.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(table.first, "slide_id,tiles,p_a,p_b,predicted,in_sample_folds")
        XCTAssertEqual(table.count, 3)
        var cohortScaled: [Float] = []
        for stem in ["CMU-1-Small-Region", "tcga-cr-7395-01a-01-ts1"] {
            let folder = out + "/predict-mil/" + stem
            let predictions = try SlidePredictions(directory: folder)
            XCTAssertEqual(predictions.classes, ["attention"])
            XCTAssertEqual(predictions.origins.count, try TilingFolder(out + "/tile/" + stem).origins().count)
            XCTAssertTrue(predictions.probabilities.allSatisfy { $0 > 0 && $0 <= 1 }, "attention percentiles lie in (0, 1]")
            XCTAssertEqual(predictions.probabilities.max(), 1)
            XCTAssertEqual(predictions.footprint, try TilingFolder(out + "/tile/" + stem).summary().footprintLevel0)
            let slide = try Slide(path: stem.hasPrefix("CMU") ? TestData.cmuSVS : TestData.tcgaSVS)
            XCTAssertEqual(predictions.slideWidth, slide.dimensions.width)
            let strip = try RGBImage.read(path: folder + "/top-tiles.png")
            XCTAssertGreaterThan(strip.width, 6 * 128)
            let rows = try String(contentsOfFile: folder + "/attention.csv", encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(rows.count, predictions.origins.count + 1)

            let slidePath = slide.path
            XCTAssertEqual(try StageFixtures.stageCommand(HeatmapStage.self, [slidePath, "--out", out, "--predictions", out + "/predict-mil",
                                                                             "--tiff", "--tiff-downsample", "16"]).run().completed, 1)
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/heatmap/\(stem)/heatmap-attention.png"))
            let overlay = try Slide(path: out + "/heatmap/\(stem)/heatmap-attention.tif")
            XCTAssertEqual(overlay.levels[0].width, (slide.dimensions.width + 15) / 16, "the slide's grid at downsample 16")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/heatmap/\(stem)/classes.png"), "one score has no class map")

            // Raw attention on the cohort's scale (its 1st to 99th percentile), beside the percentile.
            let scaled = try HDF5Reader(path: folder + "/" + PredictionFiles.hdf5).floatMatrix(PredictionFiles.cohortAttention).values
            XCTAssertEqual(scaled.count, predictions.origins.count)
            XCTAssertTrue(scaled.allSatisfy { (0...1).contains($0) })
            cohortScaled += scaled
            XCTAssertEqual(rows.first, "x,y,attention,percentile,cohort_scaled")
            // The picture names the slide and its MIL label (drawn in dark red) beside the colours.
            let picture = try RGBImage.read(path: out + "/heatmap/\(stem)/heatmap-attention.png")
            XCTAssertTrue((0..<(picture.width * picture.height)).contains { picture.pixels[3 * $0] == 150 && picture.pixels[3 * $0 + 1] == 20 },
                          "the verdict line is drawn")
        }
        XCTAssertEqual(cohortScaled.min(), 0, "the cohort's lowest")
        XCTAssertEqual(cohortScaled.max(), 1, "the cohort's highest")
        XCTAssertEqual(try StageFixtures.stageCommand(HeatmapStage.self, [TestData.cmuSVS, "--out", out + "/raw", "--predictions", out + "/predict-mil",
                                                                         "--scale", "raw"]).run().completed, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/raw/heatmap/CMU-1-Small-Region/heatmap-attention.png"))
    }

    /// What the colours mean is chosen and said: probabilities 0 to 1 or their percentile within
    /// the slide; attention as its percentile or on the cohort's scale.
    func testHeatmapScalesAreChosenAndNamed() throws {
        let dir = TestData.scratchDirectory()
        let origins = [(x: 0, y: 0), (x: 256, y: 0), (x: 0, y: 256), (x: 256, y: 256)]
        let grid = PredictionGrid(slide: "s.svs", patchSize: 256, readLevel: 0, footprint: 256, stride: 256, width: 512, height: 512)
        try SlidePredictions.write(origins: origins, values: [0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6], classes: ["tumour", "normal"], grid: grid,
                                   to: dir + "/p")
        let predictions = try SlidePredictions(directory: dir + "/p")
        let source = dir + "/p/" + PredictionFiles.hdf5
        let raw = try HeatmapLayer(predictions, className: "tumour", scale: .auto, source: source)
        XCTAssertEqual(raw.values, [0.1, 0.2, 0.3, 0.4])
        XCTAssertEqual(raw.measure, "P(tumour), 0 TO 1")
        let ranked = try HeatmapLayer(predictions, className: "tumour", scale: .percentile, source: source)
        XCTAssertEqual(ranked.values, [0.25, 0.5, 0.75, 1])
        XCTAssertEqual(ranked.measure, "P(tumour): PERCENTILE WITHIN THIS SLIDE")

        try SlidePredictions.write(origins: origins, values: [0.25, 0.5, 0.75, 1], classes: ["attention"], grid: grid, to: dir + "/old")
        let attention = try SlidePredictions(directory: dir + "/old")
        XCTAssertEqual(try HeatmapLayer(attention, className: "attention", scale: .auto, source: dir + "/old/" + PredictionFiles.hdf5).measure,
                       "ATTENTION: PERCENTILE WITHIN THIS SLIDE")
        XCTAssertThrowsError(try HeatmapLayer(attention, className: "attention", scale: .raw, source: dir + "/old/" + PredictionFiles.hdf5)) {
            XCTAssertTrue("\($0)".contains("run predict-mil again"), "\($0)")
        }
        XCTAssertEqual(PredictMILStage.cohortRange((0...200).map(Float.init)), 2...198, "the cohort's 1st to 99th percentile")
    }

    /// Cross-validation on feature files written as CLAM writes them, patients kept together,
    /// then the fold models voting on every slide.
    func testCrossValidationOnCLAMFeatureFiles() throws {
        let dir = TestData.scratchDirectory()
        let bags = try Self.writeCLAMCohort(in: dir)
        // Two slides per patient; the table names slides with their extension, as some tools do.
        var labels = "slide_id,case_id,label\n"
        for (i, bag) in bags.enumerated() { labels += "\(bag.slide).svs,patient-\(i / 2),\(bag.positive ? "tumour" : "normal")\n" }
        labels += "missing-slide,patient-99,normal\n"
        try labels.write(toFile: dir + "/labels.csv", atomically: true, encoding: .utf8)

        let out = dir + "/run"
        let summary = try StageFixtures.stageCommand(TrainMILStage.self, ["--out", out, "--features", dir, "--labels", dir + "/labels.csv",
                                                                         "--folds", "3", "--epochs", "4", "--min-epochs", "2", "--hidden", "16",
                                                                         "--attention-width", "8", "--model", "abmil"]).run()
        XCTAssertEqual(summary.completed, 1, "\(summary.failed)")
        for fold in 0..<3 { XCTAssertNoThrow(try AttentionMIL.load(path: out + "/train-mil/fold-\(fold).safetensors")) }
        let metrics = try JSONDecoder().decode(MILSummary.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/train-mil/metrics.json")))
        XCTAssertEqual(metrics.folds.count, 3)
        XCTAssertEqual(metrics.folds.flatMap(\.testSlides).sorted(), bags.map(\.slide).sorted(), "every slide held out once")
        for fold in metrics.folds {
            let patientsOf = { (slides: [String]) in Set(slides.compactMap { s in bags.firstIndex { $0.slide == s }.map { $0 / 2 } }) }
            XCTAssertTrue(patientsOf(fold.trainSlides).isDisjoint(with: patientsOf(fold.testSlides + fold.validationSlides)), fold.name)
        }
        let predictions = try String(contentsOfFile: out + "/train-mil/predictions.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(predictions.first, "slide_id,label,fold,p_normal,p_tumour,predicted")
        XCTAssertEqual(predictions.count, 19)

        XCTAssertEqual(try StageFixtures.stageCommand(PredictMILStage.self, ["--out", out, "--features", dir + "/h5_files",
                                                                            "--model", out + "/train-mil"]).run().completed, 1)
        let verdict = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/predict-mil/case-0/predictions.json"))) as? [String: Any]
        XCTAssertEqual((verdict?["models"] as? [String])?.count, 3, "the three fold models vote")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/predict-mil/case-0/top-tiles.png"), "no slide, no strip")
        // Every slide was trained on by the two folds that did not hold it out: said in labels.csv.
        let predicted = try String(contentsOfFile: out + "/predict-mil/labels.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        XCTAssertEqual(predicted.count, 18)
        XCTAssertTrue(predicted.allSatisfy { $0.split(separator: ",").last?.split(separator: ";").count == 2 }, predicted.first.map(String.init) ?? "")
        XCTAssertEqual((verdict?["inSampleFolds"] as? [String])?.count, 2)

        // The report's cohort view: every slide with its held-out prediction, ROC and loss curves.
        let part = TrainMILStage.report(StageOutputLocation(root: out, folder: "train-mil", stageID: "train-mil", slide: nil))
        for bag in bags { XCTAssertTrue(part.html.contains("<td>\(bag.slide)</td>"), bag.slide) }
        XCTAssertTrue(part.html.contains("Every slide (19;"), String(part.html.prefix(400)))
        XCTAssertTrue(part.html.contains("<td>missing-slide</td>") && part.html.contains("no feature file: left out"), "every row of the labels table")
        XCTAssertTrue(part.html.contains("ROC of the held-out slides (18)") && part.html.contains("tumour AUC "), "ROC chart")
        XCTAssertTrue(part.html.contains("Loss per epoch") && part.html.contains("fold-1 validation"), "loss chart")
    }

    /// 18 real-feature bags (lung, 3–5 % carcinoma in positives) as CLAM's `h5_files/<slide>.h5`.
    static func writeCLAMCohort(in dir: String) throws -> [PatchCohort.Bag] {
        let pools = try MILCohortTests.loadPools()
        var generator = SeededGenerator(seed: 2)
        let bags = PatchCohort.makeBags(pools, count: 18, half: 0, prefix: "case", generator: &generator)
        try FileManager.default.createDirectory(atPath: dir + "/h5_files", withIntermediateDirectories: true)
        try PatchCohort.write(bags.map { ($0, .train) }, to: dir + "/h5_files")
        return bags
    }

    /// Every shipped manifest is valid and names files that exist in a fresh clone.
    func testShippedPipelinesLoad() throws {
        let folder = TestData.repository + "/pipelines"
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) where name.hasSuffix(".yaml") {
            // Manifests that re-draw another run's outputs (heatmap.yaml) need that run first.
            let text = try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
            if text.split(separator: "\n").contains(where: { $0.contains("inputs:") && $0.contains("../out/") }) { continue }
            let manifest = try Manifest.load(path: folder + "/" + name)
            if let slides = manifest.slides, !slides.contains("/out/") {
                XCTAssertTrue(FileManager.default.fileExists(atPath: slides), "\(name): \(slides)")
            }
            for entry in manifest.stages {
                for spec in entry.type.parameters {
                    guard case .path = spec.type else { continue }
                    if let path = entry.parameters.string(spec.name) {
                        XCTAssertTrue(FileManager.default.fileExists(atPath: path), "\(name): \(entry.id).\(spec.name) = \(path)")
                    }
                }
            }
        }
    }

    func testPercentileRanksMatchSciPy() {
        // scipy.stats.percentileofscore(a, x, kind='rank') / 100 for each x of a.
        XCTAssertEqual(percentileRanks([3, 1, 2, 2]), [1.0, 0.25, 0.625, 0.625])
    }
}
