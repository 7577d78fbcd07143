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

final class RecipeTests: XCTestCase {
    /// A recipe fills the options it names; an option given explicitly wins, through either door.
    func testRecipesFillOnlyWhatWasNotGiven() throws {
        func stage(_ tokens: [String]) throws -> PretrainStage {
            var arguments = Arguments(["--patches", TestData.root, "--out", "/tmp/x"] + tokens)
            let (manifest, _) = try StageCommandLine.parse(PretrainStage.self, &arguments)
            return try XCTUnwrap(manifest.stages[0].stage as? PretrainStage)
        }
        let authors = try stage(["--recipe", "authors"])
        XCTAssertEqual(authors.options.baseLearningRate, PretrainRecipe.authors.values["lr"].flatMap { if case let .double(v) = $0 { return v } else { return nil } })
        XCTAssertEqual(authors.config.teacherTargets, .centred)
        XCTAssertEqual(authors.config.distillationWeight, 0.2)
        XCTAssertEqual(authors.config.meanEntropyWeight, 0, "the mean-entropy term is off unless asked for")
        let explicit = try stage(["--recipe", "authors", "--lr", "0.01", "--teacher-targets", "sinkhorn", "--mean-entropy-weight", "0.5"])
        XCTAssertEqual(explicit.options.baseLearningRate, 0.01)
        XCTAssertEqual(explicit.config.teacherTargets, .sinkhorn)
        XCTAssertEqual(explicit.config.meanEntropyWeight, 0.5)
        XCTAssertEqual(explicit.config.maskRatio, authors.config.maskRatio, "what was not given still comes from the recipe")
        let warming = try stage(["--prototypes", "256", "--tau-t", "0.07", "--tau-t-warmup-from", "0.04", "--tau-t-warmup-epochs", "30"])
        XCTAssertEqual(warming.config.prototypes, 256)
        XCTAssertEqual(warming.config.teacherTemperature, 0.07)
        XCTAssertEqual(warming.options.teacherTemperatureWarmupStart, 0.04)
        XCTAssertEqual(warming.options.teacherTemperatureWarmupEpochs, 30)
        XCTAssertNil(authors.options.teacherTemperatureWarmupStart, "no warm-up unless asked for")
        XCTAssertEqual(authors.config.prototypes, SDMAEConfig.tiny.prototypes, "K from the preset")
        try XCTAssertThrowsError(stage(["--tau-t-warmup-from", "0.04"]), "a warm-up without a length is a mistake, not a no-op")
        try XCTAssertThrowsError(stage(["--tau-t-warmup-epochs", "5"]), "a warm-up without a start is a mistake, not a no-op")
        for recipe in PretrainRecipe.allCases {
            for name in recipe.values.keys {
                XCTAssertNotNil(PretrainStage.parameters.first { $0.name == name && $0.defaultValue == nil },
                                "\(name) is set by recipes, so it declares no default of its own")
            }
        }
    }

    /// Input size, token size and weight initialisation are searchable from the command line;
    /// a geometry the layers cannot take is refused before any training.
    func testGeometryAndInitialisationOptions() throws {
        func stage(_ tokens: [String]) throws -> PretrainStage {
            var arguments = Arguments(["--patches", TestData.root, "--out", "/tmp/x", "--preset", "tiny96"] + tokens)
            let (manifest, _) = try StageCommandLine.parse(PretrainStage.self, &arguments)
            return try XCTUnwrap(manifest.stages[0].stage as? PretrainStage)
        }
        let preset = try stage([])
        XCTAssertEqual([preset.config.imageSize, preset.config.patchSize], [96, 8], "no override keeps the preset")
        XCTAssertNil(preset.options.initialisation, "Xavier stays unrecorded, as in older runs")
        let coarse = try stage(["--patch-size", "16", "--image-size", "128"])
        XCTAssertEqual(coarse.config.tokens, 64)
        try XCTAssertThrowsError(stage(["--patch-size", "10"])) { error in
            XCTAssertTrue("\(error)".contains("not a multiple of patch size 10"), "\(error)")
        }
        try XCTAssertEqual(stage(["--init", "trunc-normal"]).options.initialisation, .truncatedNormal)

        func spread(_ model: SDMAEModel, _ name: String) throws -> (std: Float, maximum: Float) {
            let parameter = try XCTUnwrap(model.parameters.first { $0.name == name }, name)
            let values = (0..<parameter.count).map { parameter.value[$0] }
            let mean = values.reduce(0, +) / Float(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(values.count)
            return (variance.squareRoot(), values.map(abs).max() ?? 0)
        }
        let xavier = SDMAEModel(config: .tiny96, seed: 3)
        let timm = SDMAEModel(config: .tiny96, seed: 3, initialisation: .truncatedNormal)
        // fc1 is 192 → 768: Xavier's bound √(6/960) ≈ 0.079 gives σ ≈ 0.046; a normal σ 0.02 cut at
        // ±2σ has σ ≈ 0.0176 and nothing beyond 0.04.
        let wide = try spread(xavier, "blocks.0.mlp.fc1.weight"), narrow = try spread(timm, "blocks.0.mlp.fc1.weight")
        XCTAssertEqual(wide.std, 0.0456, accuracy: 0.002)
        XCTAssertEqual(narrow.std, 0.0176, accuracy: 0.001)
        XCTAssertLessThanOrEqual(narrow.maximum, 0.04)
        let embedding = "patch_embed.proj.weight"
        try XCTAssertEqual(spread(xavier, embedding).std, spread(timm, embedding).std, "the patch embedding stays Xavier")
    }
}
