import Foundation
@testable import MIL
import NN
import Storage
import XCTest

/// CLAM-SB against the PyTorch reference (Tests/Data/mil-clam-sb, computed in float64) and
/// against finite differences.
final class MILModelTests: XCTestCase {
    static let folder = TestData.path("mil-clam-sb")

    func loadFixture() throws -> (AttentionMIL, [String: NamedTensor]) {
        let model = try AttentionMIL.load(path: Self.folder + "/weights.safetensors")
        return try (model, Safetensors.read(path: Self.folder + "/expected.safetensors").tensors)
    }

    func assertClose(_ actual: [Float], _ expected: [Float], tolerance: Float, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, "\(name): size", file: file, line: line)
        let scale = max(expected.map(abs).max() ?? 0, 1e-6)
        let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(name): max error \(worst) vs scale \(scale)", file: file, line: line)
    }

    func testConfigFromCLAMMetadata() throws {
        let (model, _) = try loadFixture()
        XCTAssertEqual(model.config.model, .clamSB)
        XCTAssertEqual(model.config.embedDim, 24)
        XCTAssertEqual(model.config.size, [16, 8])
        XCTAssertEqual(model.config.kSample, 4)
        XCTAssertTrue(model.config.subtyping)
    }

    func testOutputsAndLossesMatchReference() throws {
        let (model, expected) = try loadFixture()
        for (bag, label) in [("bag0", 2), ("bag1", 0)] {
            let output = try model.predict(XCTUnwrap(expected[bag + ".features"]).floats)
            assertClose(output.rawAttention, expected[bag + ".attention_raw"]!.floats, tolerance: 1e-5, bag + " raw attention")
            assertClose(output.attention, expected[bag + ".attention"]!.floats, tolerance: 1e-5, bag + " attention")
            assertClose(output.logits, expected[bag + ".logits"]!.floats, tolerance: 1e-5, bag + " logits")
            assertClose(output.probabilities, expected[bag + ".prob"]!.floats, tolerance: 1e-5, bag + " probabilities")
            let loss = try model.loss(label: label)
            assertClose([loss.bag], expected[bag + ".bag_loss"]!.floats, tolerance: 1e-5, bag + " bag loss")
            try assertClose([XCTUnwrap(loss.instance)], expected[bag + ".instance_loss"]!.floats, tolerance: 1e-5, bag + " instance loss")
            if let total = expected[bag + ".total_loss"] { assertClose([loss.total], total.floats, tolerance: 1e-5, bag + " total loss") }
        }
    }

    func testGradientsAndAdamWStepMatchReference() throws {
        let (model, expected) = try loadFixture()
        _ = try model.predict(expected["bag0.features"]!.floats)
        _ = try model.loss(label: 2)
        try model.backward(label: 2)
        for p in model.parameters {
            try assertClose(p.grad.array, XCTUnwrap(expected["grad." + p.name]).floats, tolerance: 1e-4, "grad " + p.name)
        }
        let optimiser = AdamW(parameters: model.parameters, learningRate: 2e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 1e-5)
        optimiser.update()
        for p in model.parameters {
            try assertClose(p.value.array, XCTUnwrap(expected["step1." + p.name]).floats, tolerance: 1e-4, "step " + p.name)
        }
    }

    /// Every parameter's gradient, with dropout active and the instance branch on, against central
    /// differences of the total loss (the dropout mask is replayed from the same seed).
    func testFiniteDifferences() throws {
        for (kind, subtyping) in [(MILConfig.Model.clamSB, true), (.clamSB, false), (.abmil, false)] {
            let config = MILConfig(model: kind, embedDim: 6, classes: 3, size: [8, 5], kSample: 2, subtyping: subtyping, dropout: 0.25)
            let model = AttentionMIL(config: config)
            model.initialise(seed: 3)
            var generator = SeededGenerator(seed: 9)
            let tiles = 11
            let bag = (0..<(tiles * 6)).map { _ in generator.normal() }
            let label = 1
            func loss() throws -> Double {
                var dropoutGenerator = SeededGenerator(seed: 5)
                try bag.withUnsafeBufferPointer { _ = try model.forward($0.baseAddress!, tiles: tiles, training: true, using: &dropoutGenerator) }
                return try Double(model.loss(label: label).total)
            }
            _ = try loss()
            for p in model.parameters { p.grad.zero() }
            try model.backward(label: label)
            var worst: Float = 0
            for p in model.parameters {
                let analytic = p.grad.array
                let scale = max(analytic.map(abs).max() ?? 0, 1e-3)
                for i in stride(from: 0, to: p.count, by: max(1, p.count / 7)) {
                    let saved = p.value[i]
                    p.value[i] = saved + 1e-2
                    let plus = try loss()
                    p.value[i] = saved - 1e-2
                    let minus = try loss()
                    p.value[i] = saved
                    worst = max(worst, abs(Float((plus - minus) / 2e-2) - analytic[i]) / scale)
                }
            }
            XCTAssertLessThan(worst, 2e-2, "\(kind) subtyping \(subtyping): finite differences disagree (\(worst))")
        }
    }

    func testCheckpointRoundTripAndRefusals() throws {
        let directory = TestData.scratchDirectory()
        let config = MILConfig(model: .abmil, embedDim: 4, classes: 2, size: [6, 3], classNames: ["normal", "tumour"])
        let model = AttentionMIL(config: config)
        model.initialise(seed: 1)
        try model.write(to: directory + "/m.safetensors")
        let loaded = try AttentionMIL.load(path: directory + "/m.safetensors")
        XCTAssertEqual(loaded.config, config)
        XCTAssertEqual(loaded.parameters.map(\.value.array), model.parameters.map(\.value.array))

        try Safetensors.write([(name: "x", shape: [1], values: [0])], metadata: ["config": #"{"embed_dim": 4, "classes": 2, "size": [6, 3]}"#],
                              to: directory + "/wrong.safetensors")
        try XCTAssertThrowsError(AttentionMIL.load(path: directory + "/wrong.safetensors")) {
            XCTAssertTrue("\($0)".contains("no tensor attention_net.0.weight"), "\($0)")
        }
        try Safetensors.write([(name: "x", shape: [1], values: [0])], metadata: ["config": #"{"embed_dim": 4, "classes": 2, "size": [100000000, 3]}"#],
                              to: directory + "/huge.safetensors")
        try XCTAssertThrowsError(AttentionMIL.load(path: directory + "/huge.safetensors")) {
            XCTAssertTrue("\($0)".contains("size"), "\($0)")
        }
    }
}
