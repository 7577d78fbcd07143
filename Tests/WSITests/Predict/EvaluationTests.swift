import Foundation
@testable import Heatmap
import Imaging
@testable import NN
@testable import Pipeline
@testable import Predict
@testable import SDMAE
import SlideIO
import Storage
import Tiling
import XCTest

/// Whether features carry tissue information: grouping by source, crops, baselines, the
/// evaluate stage, and the collapse watch.
final class EvaluationTests: XCTestCase {
    static let kather = FrontDoorTests.repository + "/samples/labelled"
    static let katherPattern = "CRC-Prim-HE-[0-9_]+"

    func testTIFFPicturesDecode() throws {
        let patches = try LabelledPatches(root: Self.kather)
        XCTAssertEqual(patches.dataset.count, 24)
        XCTAssertEqual(patches.classes.count, 8)
        let tumour = try patches.dataset.image(0)
        XCTAssertEqual(tumour.width, 150)
        XCTAssertEqual(tumour.height, 150)
        // H&E: more red than green on average, and not a flat picture.
        let n = Double(tumour.width * tumour.height)
        let red = (0..<tumour.width * tumour.height).map { Double(tumour.pixels[$0 * 3]) }.reduce(0, +) / n
        let green = (0..<tumour.width * tumour.height).map { Double(tumour.pixels[$0 * 3 + 1]) }.reduce(0, +) / n
        XCTAssertGreaterThan(red, green + 20)
        XCTAssertGreaterThan(Set(tumour.pixels).count, 100)
        // A Kather tile is also a one-level slide, as PNG and JPEG pictures are.
        let slide = try Slide(path: patches.dataset.name(0))
        XCTAssertEqual(slide.dimensions.width, 150)
        try XCTAssertTrue(slide.readRegion(x: 10, y: 20, level: 0, width: 1, height: 1)[0, 0] == tumour[10, 20])
    }

    func testGroupsByPatternTableAndFile() throws {
        let patches = try LabelledPatches(root: Self.kather)
        let byPattern = try patches.groups(by: .pattern(Self.katherPattern))
        XCTAssertEqual(Set(byPattern).count, 21, "24 tiles from 21 source images")
        XCTAssertEqual(byPattern.filter { $0 == "CRC-Prim-HE-06_005" }.count, 3)
        try XCTAssertEqual(Set(patches.groups(by: .perFile)).count, 24)
        try XCTAssertThrowsError(patches.groups(by: .pattern("^no-such-prefix"))) { error in
            XCTAssertTrue("\(error)".contains("does not match the group pattern"), "\(error)")
        }
        let dir = TestData.scratchDirectory()
        let names = patches.dataset.sources.indices.map { URL(fileURLWithPath: patches.dataset.name($0)).lastPathComponent }
        let table = "file,group\n" + names.enumerated().map { "\($1),patient-\($0 % 4)" }.joined(separator: "\n") + "\n"
        try table.write(toFile: dir + "/groups.csv", atomically: true, encoding: .utf8)
        try XCTAssertEqual(Set(patches.groups(by: .table(dir + "/groups.csv"))), ["patient-0", "patient-1", "patient-2", "patient-3"])
        try "file,group\nnothing.tif,x\n".write(toFile: dir + "/partial.csv", atomically: true, encoding: .utf8)
        try XCTAssertThrowsError(patches.groups(by: .table(dir + "/partial.csv"))) { error in
            XCTAssertTrue("\(error)".contains("not listed in the groups table"), "\(error)")
        }
    }

    func testCropsCoverPicturesAndKeepTheirSource() throws {
        XCTAssertEqual(EvaluationCrops.positions(150, 96), [0, 54])
        XCTAssertEqual(EvaluationCrops.positions(224, 96), [0, 64, 128])
        XCTAssertEqual(EvaluationCrops.positions(96, 96), [])
        let patches = try LabelledPatches(root: Self.kather)
        let groups = try patches.groups(by: .pattern(Self.katherPattern))
        let (dataset, labels, cropGroups) = try EvaluationCrops.expand(patches, groups: groups, size: 96)
        XCTAssertEqual(dataset.count, 96)
        XCTAssertEqual(labels, patches.labels.flatMap { Array(repeating: $0, count: 4) })
        XCTAssertEqual(cropGroups, groups.flatMap { Array(repeating: $0, count: 4) })
        let whole = try patches.dataset.image(0), corner = try dataset.image(3)
        XCTAssertEqual(corner.width, 96)
        XCTAssertTrue(corner[0, 0] == whole[54, 54], "the last crop starts at (54, 54)")
    }

    func testColourHistogramBins() {
        var image = RGBImage(width: 2, height: 1, fill: (255, 0, 0))
        image[1, 0] = (255, 255, 255)
        let h = ColourHistogram.features(image)
        XCTAssertEqual(h.count, 54)
        for channel in 0..<3 { XCTAssertEqual(h[(channel * 18)..<(channel * 18 + 18)].reduce(0, +), 1, accuracy: 1e-6) }
        XCTAssertEqual(h[0], 1, "red and white both have hue 0")
        XCTAssertEqual(h[18 + 17], 0.5, "half saturated (red), half not (white)")
        XCTAssertEqual(h[18], 0.5)
        XCTAssertEqual(h[36 + 17], 1, "both at full value")
    }

    /// The stage end to end on the Kather sample: three feature sets on the same folds, pictures
    /// and the report section.
    func testEvaluateStageWritesSideBySideResults() throws {
        let dir = TestData.scratchDirectory()
        let config = SDMAEConfig(imageSize: 48, patchSize: 16, width: 16, depth: 1, heads: 2, decoderWidth: 8, decoderDepth: 1,
                                 decoderHeads: 2, headHidden: 8, bottleneck: 8, prototypes: 8)
        // A checkpoint written elsewhere that states only its architecture (no training keys).
        let model = SDMAEModel(config: config, seed: 5)
        let architecture = "{\"bottleneck\":8,\"decoderDepth\":1,\"decoderHeads\":2,\"decoderWidth\":8,\"depth\":1,\"headHidden\":8,"
            + "\"heads\":2,\"imageSize\":48,\"patchSize\":16,\"prototypes\":8,\"width\":16}"
        try Safetensors.write(model.stateTensors(), metadata: ["config": architecture], to: dir + "/model.safetensors")
        try XCTAssertEqual(SDMAEModel.load(path: dir + "/model.safetensors").config, config)

        var arguments = Arguments(["--checkpoint", dir + "/model.safetensors", "--labelled", Self.kather, "--group-pattern", Self.katherPattern,
                                   "--out", dir + "/out", "--folds", "3", "--epochs", "100", "--quiet"])
        let (manifest, options) = try StageCommandLine.parse(EvaluateStage.self, &arguments)
        let summary = try PipelineRunner(manifest: manifest, options: options).run()
        XCTAssertEqual(summary.completed, 1, "\(summary.failed)")
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/out/evaluate/" + EvaluateStage.resultName))
        let report = try JSONDecoder().decode(EvaluationReport.self, from: data)
        XCTAssertEqual(report.results.map(\.features), ["checkpoint", "random init", "colour histogram"])
        XCTAssertEqual(report.samples, 24 * 16, "150 px pictures give 4×4 crops of 48")
        XCTAssertEqual(report.groups, 21)
        XCTAssertEqual(report.folds, 3)
        for result in report.results {
            XCTAssertEqual(result.linear.samples, report.samples, "every sample predicted once, out of fold")
            XCTAssertEqual(result.linearFolds.count, 3)
            XCTAssertEqual(result.linear.recall.count, 8)
            XCTAssertTrue((0...1).contains(result.knn.balancedAccuracy))
        }
        // Colour alone tells adipose and empty from the rest: the histogram is far above chance (1/8).
        XCTAssertGreaterThan(report.results[2].linear.balancedAccuracy, 0.25)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/out/evaluate/" + EvaluateStage.confusionName))
        let html = try String(contentsOfFile: Report.write(outputRoot: dir + "/out"), encoding: .utf8)
        XCTAssertTrue(html.contains("<h2>Evaluation: evaluate</h2>"))
        XCTAssertTrue(html.contains("src=\"evaluate/confusion-linear.png\""))
    }

    /// The teacher's two entropies and the collapse watch on synthetic and real steps.
    func testCollapseWatch() throws {
        let watch = CollapseWatch(prototypes: 1024, after: 10, active: true)
        func losses(_ teacher: Double, _ usage: Double) -> StepLosses {
            StepLosses(reconstruction: 1, distillation: 1, total: 1, teacherEntropy: teacher, prototypeEntropy: usage)
        }
        XCTAssertEqual(watch.kind(losses(0.01, 0.01), step: 5), .none, "quiet during warm-up")
        XCTAssertEqual(watch.kind(losses(0.01, 0.01), step: 50), .constant, "every image one-hot on the same prototype")
        XCTAssertEqual(watch.kind(losses(2.13, 2.13), step: 50), .constant, "every image the same mixture")
        XCTAssertEqual(watch.kind(losses(0.01, 3.0), step: 50), .none, "sharp and different per image: healthy")
        XCTAssertEqual(watch.kind(losses(6.9, 6.92), step: 50), .uniform)
        XCTAssertEqual(watch.kind(losses(2.0, 5.0), step: 50), .none)
        XCTAssertEqual(CollapseWatch(prototypes: 1024, after: 0, active: false).kind(losses(0.01, 0.01), step: 50), .none, "plain MAE has no teacher")

        // The entropy of the batch mean is at least the mean entropy (concavity).
        let config = PretrainingTests.smallConfig
        let model = SDMAEModel(config: config, seed: 9)
        var generator = SeededGenerator(seed: 2)
        let images = (0..<(4 * 3 * 16 * 16)).map { _ in generator.uniform() }
        let mask = TokenMask.random(batch: 4, tokens: config.tokens, masked: config.maskedTokens, using: &generator)
        let step = try images.withUnsafeBufferPointer { try model.forward(images: $0.baseAddress!, batch: 4, mask: mask) }
        XCTAssertGreaterThanOrEqual(step.prototypeEntropy, step.teacherEntropy - 1e-9)
        XCTAssertLessThanOrEqual(step.prototypeEntropy, log(Double(config.prototypes)) + 1e-9)
    }
}
