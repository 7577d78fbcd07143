import Foundation
import Imaging
import NN
@testable import SDMAE
import Storage
import Tiling
import XCTest

final class PretrainingTests: XCTestCase {
    /// A model small enough for debug builds: 16 px images, 4 px patches.
    static var smallConfig: SDMAEConfig {
        var config = SDMAEConfig(imageSize: 16, patchSize: 4, width: 16, depth: 2, heads: 2, decoderWidth: 8, decoderDepth: 1,
                                 decoderHeads: 2, headHidden: 16, bottleneck: 8, prototypes: 32)
        config.maskRatio = 0.5
        return config
    }

    /// Real histology: 64 px patches from the CMU slide, packed in a shard by the tiling stage.
    static func realPatches(_ directory: String) throws -> String {
        var options = TilingOptions(grid: TileGridSpec(resolution: .level(0), size: 64))
        options.format = .shard
        options.showProgress = false
        options.tissueThreshold = 0.8
        try TileExtractor(options: options).run(slidePath: TestData.cmuSVS, outputDirectory: directory + "/tiles")
        return directory + "/tiles"
    }

    func testCheckpointUsesSpecNamesAndRoundTrips() throws {
        let fixtureNames = try Safetensors.read(path: TestData.path("sdmae-tiny/weights.safetensors")).tensors
        let fixture = try SDMAEFixtureTests.loadFixture()
        let model = SDMAEModel(config: fixture.config, seed: 5)
        let path = TestData.scratchDirectory() + "/model.safetensors"
        try model.writeWeights(to: path, step: 7)
        let (written, metadata) = try Safetensors.read(path: path)
        XCTAssertEqual(Set(written.keys), Set(fixtureNames.keys), "exactly the reference state dict's names")
        for (name, tensor) in fixtureNames { XCTAssertEqual(written[name]?.shape, tensor.shape, name) }
        XCTAssertEqual(metadata["step"], "7")
        let reloaded = try SDMAEModel.load(path: path)
        XCTAssertEqual(reloaded.config, fixture.config)
        for (a, b) in zip(model.parameters, reloaded.parameters) { XCTAssertEqual(a.value.array, b.value.array, a.name) }

        // A PyTorch state dict carries no config: the caller names it, or gets a clear error.
        try XCTAssertThrowsError(SDMAEModel.load(path: TestData.path("sdmae-tiny/weights.safetensors"))) { error in
            guard case .badMetadata = error as? CheckpointError else { return XCTFail("\(error)") }
        }
        try XCTAssertNoThrow(SDMAEModel.load(path: TestData.path("sdmae-tiny/weights.safetensors"), fallback: fixture.config))
        try XCTAssertThrowsError(SDMAEModel.load(path: TestData.path("sdmae-tiny/weights.safetensors"), fallback: Self.smallConfig)) { error in
            guard case .shapeMismatch = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }

    func testAugmentationIsDeterministicAndKeepsPixelsInRange() throws {
        let image = try RGBImage.read(path: TestData.path("histolab-tiles/tissue-level2-4640-4649-8736-8746.png"))
        let augmentation = Augmentation(size: 32)
        var a = [Float](repeating: 0, count: 3 * 32 * 32), b = a, c = a
        var g1 = SeededGenerator(seed: 9), g2 = SeededGenerator(seed: 9), g3 = SeededGenerator(seed: 10)
        a.withUnsafeMutableBufferPointer { augmentation.apply(image, using: &g1, into: $0.baseAddress!) }
        b.withUnsafeMutableBufferPointer { augmentation.apply(image, using: &g2, into: $0.baseAddress!) }
        c.withUnsafeMutableBufferPointer { augmentation.apply(image, using: &g3, into: $0.baseAddress!) }
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertTrue(a.allSatisfy { (0...1).contains($0) })

        // With the crop fixed to the whole image, flips and rotations only permute pixels.
        var whole = Augmentation(size: 32)
        whole.scale = 1...1
        whole.ratio = 1...1
        let small = image.resized(width: 32, height: 32)
        var plain = [Float](repeating: 0, count: 3 * 32 * 32), turned = plain
        plain.withUnsafeMutableBufferPointer { Augmentation.plain(small, size: 32, into: $0.baseAddress!) }
        for seed in 0..<4 {
            var g = SeededGenerator(seed: UInt64(seed))
            turned.withUnsafeMutableBufferPointer { whole.apply(small, using: &g, into: $0.baseAddress!) }
            XCTAssertEqual(turned.sorted(), plain.sorted())
        }
    }

    func testDatasetReadsShardsAndImagesAndRejectsEmptyFolders() throws {
        let dir = TestData.scratchDirectory()
        let tiles = try Self.realPatches(dir)
        let images = dir + "/images"
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestData.path("histolab-tiles/no-tissue.png"), toPath: images + "/a.png")
        let dataset = try PatchDataset(paths: [tiles, images])
        let shard = try PatchShardReader(path: tiles + "/" + PatchShard.fileName)
        XCTAssertEqual(dataset.count, shard.count + 1)
        try XCTAssertEqual(dataset.image(0), shard.patch(0))
        XCTAssertTrue(dataset.name(0).hasSuffix("#\(shard.records[0].x)_\(shard.records[0].y)"))
        let empty = dir + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try XCTAssertThrowsError(PatchDataset(paths: [empty])) { XCTAssertEqual($0 as? DatasetError, .empty(paths: [empty])) }
    }

    /// A geometry or mask ratio that hides no token is refused up front, not found as a NaN loss.
    func testNothingToReconstructIsRefused() throws {
        let dir = TestData.scratchDirectory()
        let dataset = try PatchDataset(paths: [Self.realPatches(dir)])
        var options = TrainingOptions()
        options.batchSize = 2
        var oneToken = Self.smallConfig
        oneToken.patchSize = oneToken.imageSize
        try XCTAssertThrowsError(Trainer(config: oneToken, options: options, dataset: dataset, runDirectory: dir + "/one-token")) {
            XCTAssertEqual($0 as? TrainingError, .nothingToReconstruct(maskRatio: oneToken.maskRatio, tokens: 1))
        }
        var unmasked = Self.smallConfig
        unmasked.maskRatio = 0
        try XCTAssertThrowsError(Trainer(config: unmasked, options: options, dataset: dataset, runDirectory: dir + "/unmasked")) {
            XCTAssertEqual($0 as? TrainingError, .nothingToReconstruct(maskRatio: 0, tokens: unmasked.tokens))
        }
    }

    func testLoaderBatchesArePureFunctionsOfSeedAndStep() throws {
        let dataset = try PatchDataset(paths: [Self.realPatches(TestData.scratchDirectory())])
        let make = { BatchLoader(dataset: dataset, batchSize: 4, augmentation: Augmentation(size: 16), seed: 3, workers: 2) }
        let (a, b) = (make(), make())
        try XCTAssertEqual(a.make(5).images, b.make(5).images)
        try XCTAssertEqual(a.make(5).indices, b.make(5).indices)
        try XCTAssertNotEqual(a.make(5).images, a.make(6).images)
        // One epoch visits every patch once.
        let epoch = try (0..<a.stepsPerEpoch).flatMap { try a.make($0).indices }
        XCTAssertEqual(Set(epoch).count, epoch.count)
        // The background producer hands out the same batches.
        a.start(first: 2, end: 4)
        try XCTAssertEqual(a.batch(2).images, b.make(2).images)
        try XCTAssertEqual(a.batch(3).images, b.make(3).images)
    }

    /// Kill-and-resume: stopping after a checkpoint and resuming gives the very same weights and
    /// metrics as an uninterrupted run.
    func testResumeContinuesBitForBit() throws {
        let dir = TestData.scratchDirectory()
        let dataset = try PatchDataset(paths: [Self.realPatches(dir)])
        var options = TrainingOptions()
        options.epochs = 2
        options.batchSize = 8
        options.checkpointEvery = 3
        options.baseLearningRate = 1e-2
        func trainer(_ name: String) throws -> Trainer {
            let t = try Trainer(config: Self.smallConfig, options: options, dataset: dataset, runDirectory: dir + "/" + name)
            t.showProgress = false
            return t
        }
        let whole = try trainer("whole")
        try whole.run(resume: false)
        XCTAssertGreaterThan(whole.totalSteps, 4)

        try trainer("split").run(resume: false, stopAfter: 4)  // "killed" after step 4; last checkpoint at 3
        let resumed = try trainer("split")
        try resumed.run(resume: true)
        for (a, b) in zip(whole.model.parameters, resumed.model.parameters) { XCTAssertEqual(a.value.array, b.value.array, a.name) }
        XCTAssertEqual(whole.model.center, resumed.model.center)
        let metrics = { (name: String) in try String(contentsOfFile: dir + "/\(name)/metrics.csv", encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: ",").prefix(8).joined(separator: ",") } }
        try XCTAssertEqual(metrics("whole"), metrics("split"), "same losses, one line per step")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/split/" + RunFiles.finalModel))
    }

    /// DINO's warm-up: the first step uses the starting τt exactly (the same losses as a run at that
    /// constant τt), the next already a warmer one, and the model ends at the configured τt.
    func testTeacherTemperatureWarmsUp() throws {
        let dir = TestData.scratchDirectory()
        let dataset = try PatchDataset(paths: [Self.realPatches(dir)])
        var options = TrainingOptions()
        options.epochs = 2
        options.batchSize = 8
        options.checkpointEvery = 1000
        func run(_ name: String, teacherTemperature: Double, warmupFrom: Double?) throws -> (lines: [String], model: SDMAEModel) {
            var config = Self.smallConfig
            config.teacherTemperature = teacherTemperature
            var warming = options
            warming.teacherTemperatureWarmupStart = warmupFrom
            warming.teacherTemperatureWarmupEpochs = 1
            let trainer = try Trainer(config: config, options: warming, dataset: dataset, runDirectory: dir + "/" + name)
            trainer.showProgress = false
            try trainer.run(resume: false)
            let lines = try String(contentsOfFile: dir + "/\(name)/metrics.csv", encoding: .utf8).split(separator: "\n").dropFirst()
                .map { $0.split(separator: ",")[3...6].joined(separator: ",") }  // loss, L_rec, L_sd, H(P)
            return (lines, trainer.model)
        }
        let warmed = try run("warmed", teacherTemperature: 0.08, warmupFrom: 0.02)
        let cold = try run("cold", teacherTemperature: 0.02, warmupFrom: nil)
        XCTAssertEqual(warmed.lines[0], cold.lines[0], "step 1 runs at the starting temperature")
        XCTAssertNotEqual(warmed.lines[1], cold.lines[1], "step 2 is already warmer")
        XCTAssertEqual(warmed.model.teacherTemperature, 0.08, "after the warm-up, the configured τt")
    }

    func testNonFiniteLossStopsAndKeepsLastCheckpoint() throws {
        let dir = TestData.scratchDirectory()
        let dataset = try PatchDataset(paths: [Self.realPatches(dir)])
        var options = TrainingOptions()
        options.epochs = 1
        options.batchSize = 8
        options.checkpointEvery = 1
        let trainer = try Trainer(config: Self.smallConfig, options: options, dataset: dataset, runDirectory: dir + "/run")
        trainer.showProgress = false
        try trainer.run(resume: false, stopAfter: 2)
        trainer.model.parameters[0].value[0] = .nan
        try XCTAssertThrowsError(trainer.run(resume: false)) { error in
            guard case let .nonFinite(step, _, _) = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertEqual(step, 0)
        }
        let pointer = try JSONDecoder().decode(CheckpointPointer.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/run/" + RunFiles.latest)))
        XCTAssertEqual(pointer.step, 2, "the last good checkpoint is untouched")
        try XCTAssertTrue(SDMAEModel.load(path: dir + "/run/" + pointer.model).parameters[0].value.array.allSatisfy(\.isFinite))
    }

    /// Learning check on real patches: the reconstruction loss falls and the teacher does not collapse.
    func testShortRunLearns() throws {
        let dir = TestData.scratchDirectory()
        let dataset = try PatchDataset(paths: [Self.realPatches(dir)])
        var options = TrainingOptions()
        options.epochs = 12
        options.batchSize = 8
        options.baseLearningRate = 1e-2
        options.warmupEpochs = 1
        options.checkpointEvery = 1000
        let trainer = try Trainer(config: Self.smallConfig, options: options, dataset: dataset, runDirectory: dir + "/run")
        trainer.showProgress = false
        try trainer.run(resume: false)
        let rows = try TestData.metricsColumns(dir + "/run/" + RunFiles.metrics)
        let reconstruction = rows.map { $0[4] }, entropy = rows.map { $0[6] }
        let head = reconstruction.prefix(5).reduce(0, +) / 5, tail = reconstruction.suffix(5).reduce(0, +) / 5
        XCTAssertLessThan(tail, head * 0.9, "reconstruction loss falls (\(head) → \(tail))")
        XCTAssertGreaterThan(entropy.suffix(5).reduce(0, +) / 5, 0.3, "teacher entropy has not collapsed to 0")
    }
}
