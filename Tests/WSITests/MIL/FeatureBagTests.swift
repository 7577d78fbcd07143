import Foundation
import Imaging
@testable import Pipeline
@testable import Predict
import SDMAE
import SlideIO
import Storage
import Tiling
import XCTest
import Results

/// Feature bags for slide-level models: one HDF5 per slide in the CLAM/TRIDENT layout.
final class FeatureBagTests: XCTestCase {
    func testFeatureBagsMatchTheTilesAndTheEncoder() throws {
        let dir = TestData.scratchDirectory()
        let (checkpoint, _) = try StageFixtures.tinyModel(in: dir)
        // One runner at a time holds the run folder: each is released when its statement ends.
        XCTAssertEqual(try StageFixtures.stageCommand(TileStage.self, [TestData.cmuSVS, "--out", dir + "/out", "--size", "256", "--format", "shard"])
            .run().completed, 1)
        XCTAssertEqual(try StageFixtures.stageCommand(FeaturesStage.self, [TestData.cmuSVS, "--out", dir + "/out", "--tiles", dir + "/out/tile",
                                                                          "--checkpoint", checkpoint, "--batch", "7", "--precision", "fp32"]).run().completed, 1)

        let bag = try HDF5Reader(path: dir + "/out/features/CMU-1-Small-Region/" + FeaturesStage.fileName)
        let features = try bag.floatMatrix("features"), coords = try bag.int64Matrix("coords")
        let folder = TilingFolder(dir + "/out/tile/CMU-1-Small-Region")
        let origins = try folder.origins()
        XCTAssertGreaterThan(origins.count, 10)
        XCTAssertEqual(features.rows, origins.count)
        XCTAssertEqual(features.columns, 8)
        XCTAssertEqual(coords.values, origins.flatMap { [Int64($0.x), Int64($0.y)] })
        XCTAssertEqual(try bag.attribute("name", of: "features"), .string("CMU-1-Small-Region"))
        guard case let .string(encoder) = try bag.attribute("encoder", of: "features") else { return XCTFail("no encoder attribute") }
        XCTAssertTrue(encoder.hasSuffix("model.safetensors"), encoder)
        XCTAssertEqual(try bag.attribute("patch_size", of: "coords"), .int(256))
        XCTAssertEqual(try bag.attribute("patch_level", of: "coords"), .int(0))
        // The same numbers as encoding the shard's patches directly, whatever the batch size.
        let direct = try FeatureExtractor(encoder: try SDMAEModel.load(path: checkpoint)).run(try folder.patches(slidePath: TestData.cmuSVS))
        for (a, b) in zip(features.values, direct) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }
}

/// Runs and small models the stage tests share.
enum StageFixtures {
    static func stageCommand(_ type: any Stage.Type, _ tokens: [String]) throws -> PipelineRunner {
        var arguments = Arguments(tokens + ["--quiet"])
        var (manifest, options) = try StageCommandLine.parse(type, &arguments)
        options.showProgress = false
        return try PipelineRunner(manifest: manifest, options: options)
    }

    /// A tiny encoder and a two-class probe over its features, saved where the predict stage reads them.
    static func tinyModel(in dir: String, nanClassifier: Bool = false) throws -> (checkpoint: String, classifier: String) {
        let config = SDMAEConfig(imageSize: 16, patchSize: 8, width: 8, depth: 1, heads: 2, decoderWidth: 8, decoderDepth: 1,
                                 decoderHeads: 2, headHidden: 8, bottleneck: 8, prototypes: 8)
        let checkpoint = dir + "/model.safetensors", classifier = dir + "/classifier.safetensors"
        try SDMAEModel(config: config, seed: 1).writeWeights(to: checkpoint, step: 0)
        var weight = (0..<16).map { Float($0 % 5) * 0.1 - 0.2 }
        if nanClassifier { weight[3] = .nan }
        try LinearProbe(classes: ["skin", "tumour"], mean: [Float](repeating: 0, count: 8), std: [Float](repeating: 1, count: 8),
                        weight: weight, bias: [0, 0]).write(to: classifier)
        return (checkpoint, classifier)
    }
}
