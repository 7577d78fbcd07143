import Foundation
import NN
@testable import Pipeline
import Predict
@testable import SDMAE
import Storage
import Tiling
import ViT
import XCTest

/// SD-MAE starting from a published encoder (the fixtures' small ViTs): written back unchanged it
/// is the published encoder bit for bit, in the published file's layout; trained a few steps on
/// real patches, the loss falls and the adapted file still loads as that encoder.
final class AdaptationTests: XCTestCase {
    static let fixtures = TestData.path("encoders")

    static func start(_ name: String) throws -> (start: EncoderStart, weights: String) {
        let config = try ViTConfig.read(path: fixtures + "/\(name)/config.json")
        return (EncoderStart(name: name, config: config), fixtures + "/\(name)/model.safetensors")
    }

    /// Zero steps: the written encoder's features equal the starting weights' bit for bit (fp32),
    /// for timm names and for HF ViT names (q, k and v written apart again).
    func testZeroStepsReproduceTheStartingEncoder() throws {
        for name in ["uni-like", "phikon-like", "kaiko-l14-like"] {
            let (start, weights) = try Self.start(name)
            let original = try VisionTransformer.load(config: start.config, weights: weights)
            let model = SDMAEModel(config: .adapting(start), published: try VisionTransformer.load(config: start.config, weights: weights, trains: true))
            let directory = TestData.scratchDirectory() + "/\(name)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try model.writeAdaptedEncoder(into: directory)
            XCTAssertEqual(Set(try TensorFile.open(directory + "/" + RunFiles.adaptedEncoder).names), Set(try TensorFile.open(weights).names),
                           "\(name): the published file's tensor names")
            let config = try ViTConfig.read(path: directory + "/" + RunFiles.adaptedEncoderConfig)
            XCTAssertEqual(config, start.config)
            let adapted = try VisionTransformer.load(config: config, weights: directory + "/" + RunFiles.adaptedEncoder)
            var generator = SeededGenerator(seed: 2)
            let side = config.transform.outputSize
            let pixels = (0..<(2 * 3 * side * side)).map { _ in generator.normal() }
            let expected = try pixels.withUnsafeBufferPointer { try original.features($0.baseAddress!, batch: 2, side: side) }
            let found = try pixels.withUnsafeBufferPointer { try adapted.features($0.baseAddress!, batch: 2, side: side) }
            XCTAssertEqual(found, expected, name)
        }
    }

    /// A few steps on real tissue: the loss falls, the teacher keeps using its prototypes, only
    /// the unfrozen blocks move, and the result is written where `--encoder` reads it.
    func testShortAdaptationLowersTheLossAndWritesTheEncoder() throws {
        let (start, weights) = try Self.start("uni-like")
        var config = SDMAEConfig.adapting(start)
        config.prototypes = 64
        config.headHidden = 64
        config.bottleneck = 32
        let directory = TestData.scratchDirectory()
        let patches = try PretrainingTests.realPatches(directory)
        var options = TrainingOptions()
        options.epochs = 4
        options.batchSize = 8
        options.baseLearningRate = 1e-3
        options.warmupEpochs = 0
        options.checkpointEvery = 1000
        options.adaptation = Adaptation(weights: weights)
        options.adaptation?.frozenBlocks = 1
        // Sixteen patches spread over the slide: two batches an epoch.
        let tiles = try PatchDataset(paths: [patches])
        let folder = directory + "/sixteen"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for i in 0..<16 { try tiles.image(i * tiles.count / 16).write(to: folder + "/\(i).png") }
        let trainer = try Trainer(config: config, options: options, dataset: try PatchDataset(paths: [folder]), runDirectory: directory + "/run")
        trainer.showProgress = false
        try trainer.run(resume: false)
        let losses = try TestData.metricsColumns(directory + "/run/" + RunFiles.metrics).map { $0[3] }
        XCTAssertEqual(losses.count, 8)
        XCTAssertLessThan(losses.suffix(2).reduce(0, +), losses.prefix(2).reduce(0, +), "loss per step: \(losses)")
        let published = try VisionTransformer.load(config: start.config, weights: weights)
        let adapted = try VisionTransformer.load(config: start.config, weights: directory + "/run/" + RunFiles.adaptedEncoder)
        for (a, b) in zip(published.parameters, adapted.parameters) {
            let frozen = a.name.hasPrefix("blocks.0.") || ["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"].contains(a.name)
            if frozen { XCTAssertEqual(a.value.array, b.value.array, a.name) } else if a.name.hasPrefix("blocks.1.mlp.fc1.weight") {
                XCTAssertNotEqual(a.value.array, b.value.array, a.name)
            }
        }
        // The run's own checkpoint resumes into the same architecture.
        let reloaded = try SDMAEModel.load(path: directory + "/run/" + RunFiles.finalModel)
        XCTAssertEqual(reloaded.config.encoderStart?.name, "uni-like")
    }

    /// `evaluate --starting-weights`: the weights an adaptation began from get their own row on the
    /// same folds; unchanged weights score exactly as the starting ones.
    func testEvaluateComparesWithTheStartingWeights() throws {
        let (start, weights) = try Self.start("uni-like")
        let directory = TestData.scratchDirectory()
        let model = SDMAEModel(config: .adapting(start), published: try VisionTransformer.load(config: start.config, weights: weights, trains: true))
        try model.writeAdaptedEncoder(into: directory)
        var arguments = Arguments(["--encoder", directory + "/" + RunFiles.adaptedEncoderConfig, "--weights", directory + "/" + RunFiles.adaptedEncoder,
                                   "--starting-weights", weights, "--labelled", EvaluationTests.kather, "--group-pattern", EvaluationTests.katherPattern,
                                   "--out", directory + "/out", "--folds", "3", "--epochs", "50", "--quiet"])
        let (manifest, options) = try StageCommandLine.parse(EvaluateStage.self, &arguments)
        let summary = try PipelineRunner(manifest: manifest, options: options).run()
        XCTAssertEqual(summary.completed, 1, "\(summary.failed)")
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/out/evaluate/" + EvaluateStage.resultName))
        let report = try JSONDecoder().decode(EvaluationReport.self, from: data)
        XCTAssertEqual(report.results.map(\.features), ["checkpoint", "starting weights", "random init", "colour histogram"])
        XCTAssertEqual(report.results[0].linear.balancedAccuracy, report.results[1].linear.balancedAccuracy)
        XCTAssertEqual(report.results[0].knn.balancedAccuracy, report.results[1].knn.balancedAccuracy)
    }

    /// A checkpoint's metadata names the published encoder the network is built from: one that is
    /// not the encoder of the file's config, or an MLP wider than the file's, is refused before
    /// anything is allocated from it.
    func testForgedEncoderStartIsRefused() throws {
        let (start, weights) = try Self.start("uni-like")
        let model = SDMAEModel(config: .adapting(start), published: try VisionTransformer.load(config: start.config, weights: weights, trains: true))
        let path = TestData.scratchDirectory() + "/model.safetensors"
        try model.writeWeights(to: path, step: 1)
        XCTAssertNoThrow(try SDMAEModel.load(path: path))
        let (tensors, metadata) = try Safetensors.read(path: path)
        func forged(_ change: (inout SDMAEConfig) -> Void) throws -> String {
            var config = try JSONDecoder().decode(SDMAEConfig.self, from: Data(metadata["config"]!.utf8))
            change(&config)
            var forged = metadata
            forged["config"] = String(decoding: try JSONFile.encode(config, pretty: false), as: UTF8.self)
            let out = path + ".forged.safetensors"
            try Safetensors.write(tensors.map { ($0.key, $0.value.shape, $0.value.floats) }, metadata: forged, to: out)
            return out
        }
        try XCTAssertThrowsError(SDMAEModel.load(path: forged { $0.encoderStart?.config.width = 8192 })) { error in
            guard case .badMetadata = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("not this model's encoder"), "\(error)")
        }
        try XCTAssertThrowsError(SDMAEModel.load(path: forged { $0.encoderStart?.hiddenWidth = 1 << 20 })) { error in
            guard case .badMetadata = error as? CheckpointError else { return XCTFail("\(error)") }
        }
        try XCTAssertThrowsError(SDMAEModel.load(path: forged { $0.encoderStart?.hiddenWidth = 96 })) { error in
            guard case .shapeMismatch = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }
}
