import CKernels
import Foundation
import NN
import SDMAE
import Tiling
import XCTest

/// bf16 training against fp32 on real patches: one step's loss and gradients, then a short run.
final class TrainingPrecisionTests: XCTestCase {
    func testBF16TrainingFollowsFP32() throws {
        try XCTSkipUnless(Precision.bf16Available, "no AVX-512 BF16 on this CPU")
        let dataset = try PrecisionTests.realPatches()
        let config = try XCTUnwrap(SDMAEConfig.preset(named: "tiny96"))
        let batch = 16
        let batches = try (0..<6).map { b in
            try FeatureExtractor.loadImages(dataset, indices: Array((b * batch)..<((b + 1) * batch)), encoder: SDMAEModel(config: config), workers: 2)
        }
        func run(_ precision: Precision, steps: Int) throws -> (losses: [Double], gradients: [[Float]]) {
            let model = SDMAEModel(config: config, seed: 7)
            model.precision = precision
            let optimiser = AdamW(parameters: model.parameters, learningRate: 1e-3)
            var generator = SeededGenerator(seed: 3)
            var losses: [Double] = [], gradients: [[Float]] = []
            for step in 0..<steps {
                let mask = TokenMask.random(batch: batch, tokens: config.tokens, masked: config.maskedTokens, using: &generator)
                let images = batches[step % batches.count]
                try losses.append(images.withUnsafeBufferPointer { try model.forward(images: $0.baseAddress!, batch: batch, mask: mask) }.total)
                optimiser.zeroGradients()
                try model.backward()
                if step == 0 { gradients = model.parameters.map(\.grad.array) }
                optimiser.update()
                model.refreshLowPrecisionWeights()
                model.updateCenter()
            }
            return (losses, gradients)
        }
        let reference = try run(.fp32, steps: 12), low = try run(.bf16, steps: 12)
        XCTAssertEqual(low.losses[0], reference.losses[0], accuracy: 0.01 * reference.losses[0], "first loss within 1 %")
        var worst = 1.0
        for (a, b) in zip(reference.gradients, low.gradients) where a.contains(where: { $0 != 0 }) {
            worst = min(worst, cosine(a[...], b[...]))
        }
        XCTAssertGreaterThanOrEqual(worst, 0.99, "worst per-tensor gradient cosine \(worst)")
        let drift = zip(reference.losses, low.losses).map { abs($0 - $1) / $0 }.max() ?? 1
        XCTAssertLessThanOrEqual(drift, 0.02, "loss curves within 2 % (fp32 \(reference.losses), bf16 \(low.losses))")
        print(String(format: "bf16 training: worst gradient cosine %.5f, largest loss drift over 12 steps %.4f", worst, drift))
    }
}
