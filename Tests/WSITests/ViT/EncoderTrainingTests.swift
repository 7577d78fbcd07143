import Foundation
@testable import NN
@testable import ViT
import XCTest

/// The published ViT in training (SD-MAE adaptation): its forward on visible tokens equals the
/// inference path, and backward through prefix tokens, positions and every block agrees with
/// finite differences.
final class EncoderTrainingTests: GradientCheckCase {
    /// Registers, LayerScale and packed SwiGLU, as UNI2-h and Virchow2 have them.
    static func smallConfig(noEmbedClass: Bool) -> ViTConfig {
        ViTConfig(imageSize: 16, patchSize: 4, width: 8, depth: 2, heads: 2, mlpRatio: 1.5, mlp: .swigluPacked, initValues: 0.5,
                  registerTokens: 2, noEmbedClass: noEmbedClass, transform: TransformConfig(resize: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]))
    }

    func testEveryParameterAgreesWithFiniteDifferences() throws {
        for noEmbedClass in [false, true] {
            let config = Self.smallConfig(noEmbedClass: noEmbedClass)
            let model = VisionTransformer(config: config, seed: 3, trains: true)
            for p in model.parameters { for i in 0..<p.count { p.value[i] += generator.normal() * 0.2 } }
            let tokens = [[0, 5, 9, 15], [2, 3, 7, 12]]
            let patches = randomBuffer(2 * 4 * 48)
            let w = probeWeights(2 * 4 * 8)
            let probe = { try self.dot(model.encodeVisible(patches.pointer, batch: 2, tokens: tokens, grid: 4), w) }
            _ = try probe()
            for p in model.parameters { p.grad.zero() }
            try w.withUnsafeBufferPointer { try model.backwardVisible($0.baseAddress!, grid: 4) }
            for p in model.parameters {
                try check("ViT d\(p.name) (no_embed_class \(noEmbedClass))", values: p.value.pointer, count: p.count,
                          analytic: p.grad.array, probe: probe, samples: 6)
            }
        }
    }

    /// All tokens through the training path give the inference path's patch tokens, bit for bit.
    func testVisibleForwardEqualsInference() throws {
        let config = Self.smallConfig(noEmbedClass: false)
        let model = VisionTransformer(config: config, seed: 5, trains: true)
        let pixels = randomBuffer(2 * 3 * 16 * 16)
        let inferred = try model.tokens(pixels.pointer, batch: 2, side: 16)
        let inference = Array(UnsafeBufferPointer(start: inferred, count: 2 * 19 * 8))
        var patches = [Float](repeating: 0, count: 2 * 16 * 48)
        for b in 0..<2 {
            for token in 0..<16 {
                let (gy, gx) = (token / 4, token % 4)
                for c in 0..<3 {
                    for y in 0..<4 {
                        for x in 0..<4 {
                            let source = ((b * 3 + c) * 16 + gy * 4 + y) * 16 + gx * 4 + x
                            patches[((b * 16 + token) * 3 + c) * 16 + y * 4 + x] = pixels[source]
                        }
                    }
                }
            }
        }
        let all = [[Int]](repeating: Array(0..<16), count: 2)
        let training = try patches.withUnsafeBufferPointer { try model.encodeVisible($0.baseAddress!, batch: 2, tokens: all, grid: 4) }
        for b in 0..<2 {
            let prefix = 3, tokens = 19
            XCTAssertEqual(Array(UnsafeBufferPointer(start: training + b * 16 * 8, count: 16 * 8)),
                           Array(inference[((b * tokens + prefix) * 8)..<((b + 1) * tokens * 8)]))
        }
    }

    func testFrozenBlocksAndLayerDecay() throws {
        let model = VisionTransformer(config: Self.smallConfig(noEmbedClass: false), seed: 1, trains: true)
        model.setLearningRates(scale: 0.1, layerDecay: 0.5, frozen: 1)
        let scales = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0.learningRateScale) })
        XCTAssertEqual(scales["cls_token"], 0)
        XCTAssertEqual(scales["blocks.0.attn.qkv.weight"], 0)
        XCTAssertEqual(scales["blocks.1.attn.qkv.weight"] ?? 0, 0.1 * 0.5, accuracy: 1e-7)
        XCTAssertEqual(scales["norm.weight"] ?? 0, 0.1, accuracy: 1e-7)
        // Backward stops above the frozen block: nothing below it is touched.
        let tokens = [[1, 2]]
        let patches = randomBuffer(2 * 48)
        _ = try model.encodeVisible(patches.pointer, batch: 1, tokens: tokens, grid: 4)
        try probeWeights(16).withUnsafeBufferPointer { try model.backwardVisible($0.baseAddress!, grid: 4) }
        XCTAssertTrue(model.parameters.filter { $0.name.hasPrefix("blocks.0.") || $0.name == "cls_token" }.allSatisfy { $0.grad.array.allSatisfy { $0 == 0 } })
        XCTAssertFalse(model.parameters.first { $0.name == "blocks.1.mlp.fc1.weight" }!.grad.array.allSatisfy { $0 == 0 })
    }
}
