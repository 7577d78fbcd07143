import Foundation
import Imaging
import NN
@testable import SDMAE
import Storage
import Tiling
import XCTest

final class SDMAEOptionTests: XCTestCase {
    func testTargetNormalisations() {
        var config = PretrainingTests.smallConfig
        var generator = SeededGenerator(seed: 4)
        let images = (0..<(3 * 16 * 16)).map { _ in generator.uniform() }
        let tokens = [[0, 5, 15]]
        for mode in TargetNormalisation.allCases where mode != .none {
            config.targetNormalisation = mode
            var out = [Float](repeating: 0, count: 3 * config.patchValues)
            images.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { Patches.targets(src.baseAddress!, config: config, batch: 1, tokens: tokens, into: $0.baseAddress!) }
            }
            for row in 0..<3 {
                let values = Array(out[(row * config.patchValues)..<((row + 1) * config.patchValues)])
                // Channel-interleaved rows: per channel (patch-channel) or all together (patch).
                let groups: [[Float]] = mode == .perPatch ? [values] : (0..<3).map { c in stride(from: c, to: values.count, by: 3).map { values[$0] } }
                for group in groups {
                    let mean = group.reduce(0, +) / Float(group.count)
                    let variance = group.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(group.count - 1)
                    XCTAssertEqual(mean, 0, accuracy: 1e-5, "\(mode)")
                    XCTAssertEqual(variance, 1, accuracy: 1e-3, "\(mode): unbiased variance 1")
                }
            }
        }
    }

    /// The reconstruction picture undoes the target normalisation with the patch's own
    /// statistics: a prediction equal to the target must come back as the original pixels, in
    /// every mode (with `patch` it came back wrong before the two were written side by side).
    func testTargetNormalisationInverts() throws {
        var generator = SeededGenerator(seed: 5)
        let n = 64
        let original = (0..<(3 * n)).map { _ in generator.uniform() }
        for mode in TargetNormalisation.allCases {
            var values = original
            let statistics = mode.normalise(&values, pixels: n)
            XCTAssertEqual(zip(values, original).map { abs($0 - $1) }.max() ?? 0 > 0.1, mode != .none, "\(mode) changed the values")
            mode.denormalise(&values, pixels: n, statistics)
            for (a, b) in zip(values, original) { XCTAssertEqual(a, b, accuracy: 1e-5, "\(mode)") }
        }
        // Through the picture: a model whose prediction is its own target draws the original back.
        for mode in TargetNormalisation.allCases {
            var config = PretrainingTests.smallConfig
            config.targetNormalisation = mode
            let model = SDMAEModel(config: config, seed: 3)
            let images = (0..<(3 * 16 * 16)).map { _ in generator.uniform() }
            let picture = try ReconstructionPicture.render(model: model, images: images, batch: 1, seed: 1, prediction: { model.target.array })
            for (x, y) in [(1, 1), (7, 9), (15, 15)] {
                let original = (0..<3).map { UInt8((images[$0 * 256 + y * 16 + x] * 255).rounded()) }
                let drawn = picture[2 * (16 + 4) + x, y]
                XCTAssertEqual([drawn.0, drawn.1, drawn.2].map(Int.init), original.map(Int.init), "\(mode) at \(x),\(y)")
            }
        }
    }

    func testCenterModes() throws {
        for mode in CenterMode.allCases {
            var config = PretrainingTests.smallConfig
            config.centerMode = mode
            let model = SDMAEModel(config: config, seed: 2)
            model.center = (0..<config.prototypes).map { Float($0) / 100 }
            let before = model.center
            var generator = SeededGenerator(seed: 8)
            let images = (0..<(2 * 3 * 16 * 16)).map { _ in generator.uniform() }
            let mask = TokenMask.random(batch: 2, tokens: 16, masked: 8, using: &generator)
            try images.withUnsafeBufferPointer { _ = try model.forward(images: $0.baseAddress!, batch: 2, mask: mask) }
            let source = mode == .probabilities ? model.teacherDistribution : model.teacherPooledLogits
            model.updateCenter()
            for k in 0..<config.prototypes {
                let mean = (source[k] + source[config.prototypes + k]) / 2
                XCTAssertEqual(model.center[k], 0.9 * before[k] + 0.1 * mean, accuracy: 1e-6, "\(mode) centre[\(k)]")
            }
        }
    }
}
