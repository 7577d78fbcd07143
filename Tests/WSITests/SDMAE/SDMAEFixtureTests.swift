import Foundation
import NN
@testable import SDMAE
import Storage
import XCTest

/// Reproduces the PyTorch reference (Tests/Data/sdmae-tiny) number for number.
final class SDMAEFixtureTests: XCTestCase {
    struct Fixture {
        let config: SDMAEConfig
        let run: [String: Double]
        let weights: [String: NamedTensor]
        let expected: [String: NamedTensor]
    }

    static func loadFixture() throws -> Fixture {
        let folder = TestData.path("sdmae-tiny")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/config.json"))) as! [String: Any]
        let m = json["model"] as! [String: Int]
        let run = json["run"] as! [String: Double]
        var config = SDMAEConfig(imageSize: m["img"]!, patchSize: m["patch"]!, width: m["dim"]!, depth: m["depth"]!, heads: m["heads"]!,
                                 decoderWidth: m["ddim"]!, decoderDepth: m["ddepth"]!, decoderHeads: m["dheads"]!,
                                 headHidden: m["hidden"]!, bottleneck: m["bottleneck"]!, prototypes: m["k"]!)
        config.maskRatio = run["mask_ratio"]!
        config.distillationWeight = run["p"]!
        config.studentTemperature = run["tau_s"]!
        config.teacherTemperature = run["tau_t"]!
        config.centerMomentum = run["center_momentum"]!
        return try Fixture(config: config, run: run, weights: Safetensors.read(path: folder + "/weights.safetensors").tensors,
                           expected: Safetensors.read(path: folder + "/expected.safetensors").tensors)
    }

    /// Largest |a − b| relative to the reference's largest magnitude (robust to entries near 0).
    func assertClose(_ actual: [Float], _ expected: [Float], tolerance: Float, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, "\(name): size", file: file, line: line)
        let scale = max(expected.map(abs).max() ?? 0, 1e-6)
        let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(name): max error \(worst) vs scale \(scale)", file: file, line: line)
    }

    func makeModel(_ fixture: Fixture, stopGradient: Bool = false) throws -> (SDMAEModel, TokenMask, [Float]) {
        var config = fixture.config
        config.teacherStopGradient = stopGradient
        let model = SDMAEModel(config: config, seed: 1)
        try model.load(fixture.weights, path: "weights.safetensors")
        let visible = fixture.expected["visible"]!, masked = fixture.expected["masked"]!
        let batch = visible.shape[0]
        let mask = TokenMask(visible: (0..<batch).map { b in (0..<visible.shape[1]).map { Int(visible.integers[b * visible.shape[1] + $0]) } },
                             masked: (0..<batch).map { b in (0..<masked.shape[1]).map { Int(masked.integers[b * masked.shape[1] + $0]) } })
        return (model, mask, fixture.expected["images"]!.floats)
    }

    func testPositionTablesMatchReference() throws {
        let fixture = try Self.loadFixture()
        let model = try makeModel(fixture).0
        let state = Dictionary(uniqueKeysWithValues: model.stateTensors().map { ($0.name, $0.values) })
        assertClose(state["pos_embed"]!, fixture.weights["pos_embed"]!.floats, tolerance: 1e-6, "pos_embed")
        assertClose(state["decoder_pos_embed"]!, fixture.weights["decoder_pos_embed"]!.floats, tolerance: 1e-6, "decoder_pos_embed")
    }

    func testForwardLossesAndGradientsMatchPyTorch() throws {
        let fixture = try Self.loadFixture()
        let (model, mask, images) = try makeModel(fixture)
        let e = fixture.expected
        let losses = try images.withUnsafeBufferPointer { try model.forward(images: $0.baseAddress!, batch: 3, mask: mask) }
        XCTAssertEqual(losses.reconstruction, Double(e["l_rec"]!.floats[0]), accuracy: 1e-5 * Double(e["l_rec"]!.floats[0]))
        XCTAssertEqual(losses.distillation, Double(e["l_sd"]!.floats[0]), accuracy: 1e-5 * Double(e["l_sd"]!.floats[0]))
        XCTAssertEqual(losses.total, Double(e["loss"]!.floats[0]), accuracy: 1e-5 * Double(e["loss"]!.floats[0]))
        assertClose(model.latent, e["latent"]!.floats, tolerance: 1e-5, "latent")
        assertClose(model.prediction, e["pred"]!.floats, tolerance: 1e-5, "pred")
        assertClose(model.target.array.prefix(e["target"]!.floats.count).map { $0 }, e["target"]!.floats, tolerance: 1e-5, "target")
        assertClose(model.studentPooledLogits, e["z_s"]!.floats, tolerance: 1e-5, "z_s")
        assertClose(model.teacherPooledLogits, e["z_t"]!.floats, tolerance: 1e-5, "z_t")
        assertClose(model.teacherDistribution, e["P"]!.floats, tolerance: 1e-5, "P")

        for p in model.parameters { p.grad.zero() }
        try model.backward()
        for p in model.parameters {
            assertClose(p.grad.array, e["grad." + p.name]!.floats, tolerance: 1e-4, "grad." + p.name)
        }

        // One AdamW step with the fixture's hyper-parameters and groups, then the centre update.
        let r = fixture.run
        let optimiser = AdamW(parameters: model.parameters, learningRate: Float(r["lr"]!), beta1: Float(r["beta1"]!),
                              beta2: Float(r["beta2"]!), epsilon: Float(r["eps"]!), weightDecay: Float(r["weight_decay"]!))
        optimiser.update()
        for p in model.parameters {
            // Adam divides the gradient by its own magnitude, so an entry whose exact gradient is 0
            // (the key bias: softmax ignores a shift of all keys) moves by rounding noise over noise:
            // float32 and float64 legitimately disagree there, by at most one learning rate.
            let referenceGradient = e["grad." + p.name]!.floats
            let gradientScale = referenceGradient.map(abs).max() ?? 0
            let exactlyZero = referenceGradient.map { abs($0) <= 1e-6 * gradientScale }
            let actual = p.value.array, expected = e["step1." + p.name]!.floats
            assertClose(zip(actual, exactlyZero).map { $1 ? 0 : $0 }, zip(expected, exactlyZero).map { $1 ? 0 : $0 },
                        tolerance: 1e-4, "step1." + p.name)
            for (i, zero) in exactlyZero.enumerated() where zero {
                XCTAssertLessThanOrEqual(abs(actual[i] - expected[i]), Float(r["lr"]!), "step1.\(p.name)[\(i)]")
            }
        }
        model.updateCenter()
        assertClose(model.center, e["center_after"]!.floats, tolerance: 1e-5, "center_after")
        let features = try images.withUnsafeBufferPointer { try model.features(images: $0.baseAddress!, batch: 3) }
        assertClose(features, e["features_after_step1"]!.floats, tolerance: 1e-4, "features_after_step1")
    }

    func testStopGradientVariantMatchesPyTorch() throws {
        let fixture = try Self.loadFixture()
        let (model, mask, images) = try makeModel(fixture, stopGradient: true)
        _ = try images.withUnsafeBufferPointer { try model.forward(images: $0.baseAddress!, batch: 3, mask: mask) }
        for p in model.parameters { p.grad.zero() }
        try model.backward()
        for p in model.parameters {
            assertClose(p.grad.array, fixture.expected["stopgrad.grad." + p.name]!.floats, tolerance: 1e-4, "stopgrad.grad." + p.name)
        }
    }
}
