import Foundation
import Imaging
@testable import Pipeline
import Storage
import Tiling
@testable import ViT
import XCTest

/// A published encoder through the stages: features of a real slide's tiles with --encoder and
/// --weights, the shipped encoder-mil manifest from a fresh clone, and the refusals.
final class EncoderStageTests: XCTestCase {
    static let config = EncoderFixtureTests.root + "/uni-like/config.json"
    static let weights = EncoderFixtureTests.root + "/uni-like/model.safetensors"

    func testFeaturesWithAPublishedEncoderMatchTheModelTileByTile() throws {
        let dir = TestData.scratchDirectory()
        let out = dir + "/out"
        try XCTAssertEqual(StageFixtures.stageCommand(TileStage.self, [TestData.cmuSVS, "--out", out, "--size", "256", "--mpp", "0.5",
                                                                       "--format", "shard"]).run().completed, 1)
        try XCTAssertEqual(StageFixtures.stageCommand(FeaturesStage.self, [TestData.cmuSVS, "--out", out, "--tiles", out + "/tile",
                                                                           "--encoder", Self.config, "--weights", Self.weights,
                                                                           "--precision", "fp32"]).run().completed, 1)
        let bag = out + "/features/CMU-1-Small-Region/features.h5"
        let reader = try HDF5Reader(path: bag)
        let features = try reader.floatMatrix("features")
        XCTAssertEqual(features.columns, 64)
        try XCTAssertEqual(reader.attribute("encoder_width", of: "features"), .int(64))
        guard case let .string(encoder) = try reader.attribute("encoder", of: "features") else { return XCTFail("no encoder attribute") }
        XCTAssertEqual(encoder, "uni-like:model.safetensors")
        let folder = TilingFolder(out + "/tile/CMU-1-Small-Region")
        try XCTAssertEqual(features.rows, folder.origins().count)
        XCTAssertGreaterThan(features.rows, 10)

        // The stage's features are the model's on the tile as read from the shard.
        let model = try VisionTransformer.load(config: ViTConfig.read(path: Self.config), weights: Self.weights)
        let dataset = try folder.patches(slidePath: TestData.cmuSVS)
        for index in [0, features.rows - 1] {
            let pixels = try model.config.transform.apply(dataset.image(index))
            let direct = try pixels.withUnsafeBufferPointer { try model.features(images: $0.baseAddress!, batch: 1) }
            let stored = Array(features.values[(index * 64)..<((index + 1) * 64)])
            XCTAssertLessThan(EncoderFixtureTests.maxDifference(direct, stored), 1e-5, "tile \(index)")
        }
    }

    /// README's promise: the shipped manifest runs from a fresh clone (fixture-sized encoder).
    func testTheEncoderMILPipelineRuns() throws {
        let bag = try runShippedMILManifest("encoder-mil").bag
        try XCTAssertEqual(bag.floatMatrix("features").columns, 64)
    }

    /// Runs `pipelines/NAME.yaml` as a user would and checks it labelled the slides; returns the
    /// run folder and the TCGA sample's feature bag.
    private func runShippedMILManifest(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> (out: String, bag: HDF5Reader) {
        guard let wsi = PipelineTests.wsiBinary() else {
            XCTFail("the wsi executable was not built beside the tests", file: file, line: line)
            throw CancellationError()
        }
        let out = TestData.scratchDirectory(name) + "/out"
        let result = try PipelineTests.capture(wsi, ["run", FrontDoorTests.repository + "/pipelines/\(name).yaml", "--out", out, "--quiet"])
        XCTAssertEqual(result.status, 0, result.output, file: file, line: line)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/predict-mil/labels.csv"), result.output, file: file, line: line)
        return (out, try HDF5Reader(path: out + "/features/tcga-cr-7395-01a-01-ts1/features.h5"))
    }

    /// The shipped adaptation manifest: SD-MAE continues the sample encoder on the sample tiles,
    /// and the features stage, given the pretrain folder, runs the adapted encoder as published.
    func testTheAdaptationPipelineRuns() throws {
        let (out, bag) = try runShippedMILManifest("adapt-mil")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/pretrain/encoder.safetensors"))
        try XCTAssertEqual(bag.floatMatrix("features").columns, 64, "the adapted ViT's class token, not SD-MAE's mean")
        guard case let .string(encoder) = try bag.attribute("encoder", of: "features") else { return XCTFail("no encoder attribute") }
        XCTAssertTrue(encoder.hasPrefix("adapted"), encoder)
    }

    func testEncoderOptionsAreCheckedBeforeAnythingRuns() throws {
        guard let wsi = PipelineTests.wsiBinary() else { return XCTFail("the wsi executable was not built beside the tests") }
        let dir = TestData.scratchDirectory()
        try XCTAssertEqual(StageFixtures.stageCommand(TileStage.self, [TestData.cmuSVS, "--out", dir, "--size", "256"]).run().completed, 1)
        let cases: [([String], Int32, String)] = [
            (["--encoder", "uni"], 2, "uni_v1 | uni_v2"),
            (["--encoder", "uni_v1"], 2, "needs its weights"),
            (["--weights", Self.weights], 2, "--encoder"),
            ([], 2, "--checkpoint PATH or --encoder is required"),
            (["--encoder", "uni_v1", "--weights", Self.weights], 1, "do not fit the encoder: missing blocks.2.norm1.weight"),
        ]
        for (options, status, words) in cases {
            let result = try PipelineTests.capture(wsi, ["features", TestData.cmuSVS, "--tiles", dir + "/tile", "--out", dir + "/out"] + options)
            XCTAssertEqual(result.status, status, "\(options): \(result.output)")
            XCTAssertTrue(result.output.contains(words), "\(options): \(result.output)")
        }
    }
}
