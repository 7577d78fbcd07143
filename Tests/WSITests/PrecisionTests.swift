import CKernels
import Foundation
import NN
import SDMAE
import Tiling
import XCTest

/// bf16 inference against fp32 on the same weights and real patches (skipped where the CPU has
/// no AVX-512 BF16, where bf16 is not offered).
final class PrecisionTests: XCTestCase {
    func testCPUWithoutBF16FallsBackToFP32WithANotice() {
        let (chosen, notice) = Precision.resolve(.bf16, bf16Available: false)
        XCTAssertEqual(chosen, .fp32)
        XCTAssertEqual(notice, "this CPU has no AVX-512 BF16: computing in fp32")
        XCTAssertEqual(Precision.resolve(.bf16, bf16Available: true).0, .bf16)
        XCTAssertNil(Precision.resolve(.fp32, bf16Available: false).notice)
    }

    /// The CMU-1 section cut into 96-px tiles at 0.5 µm/px: a few hundred real patches.
    static func realPatches() throws -> PatchDataset {
        let folder = TestData.scratchDirectory("precision-cmu-96")
        var options = TilingOptions(grid: TileGridSpec(resolution: .micronsPerPixel(0.5), size: 96, overlap: 0))
        options.format = .shard
        options.showProgress = false
        try TileExtractor(options: options).run(slidePath: TestData.cmuSVS, outputDirectory: folder)
        return try TilingFolder(folder).patches(slidePath: TestData.cmuSVS)
    }

    func testBF16RoundingMatchesTheHardwareRule() {
        let values: [Float] = [1, -2.5, 1 + 0x1p-8, 1 + 0x1p-7 + 0x1p-8 + 0x1p-10, .infinity]
        var bits = [UInt16](repeating: 0, count: values.count)
        ck_to_bf16(values, &bits, values.count)
        // Round to nearest, ties to even, on the upper 16 bits.
        XCTAssertEqual(bits[0], 0x3F80)
        XCTAssertEqual(bits[1], 0xC020)
        XCTAssertEqual(bits[2], 0x3F80, "a tie rounds to the even neighbour")
        XCTAssertEqual(bits[3], 0x3F82, "above the tie rounds up")
        XCTAssertEqual(bits[4], 0x7F80)
        var nan = [UInt16](repeating: 0, count: 1)
        ck_to_bf16([Float.nan], &nan, 1)
        XCTAssertTrue(nan[0] & 0x7F80 == 0x7F80 && nan[0] & 0x7F != 0, "NaN stays NaN")
    }

    func testBF16FeaturesFollowFP32OnRealPatches() throws {
        try XCTSkipUnless(Precision.bf16Available, "no AVX-512 BF16 on this CPU")
        let model = try SDMAEModel(config: XCTUnwrap(SDMAEConfig.preset(named: "tiny96")), seed: 4)
        let dataset = try Self.realPatches()
        XCTAssertGreaterThan(dataset.count, 100)
        let reference = try FeatureExtractor(encoder: model).run(dataset)
        model.precision = .bf16
        let low = try FeatureExtractor(encoder: model).run(dataset)
        model.precision = .fp32
        try XCTAssertEqual(FeatureExtractor(encoder: model).run(dataset), reference, "fp32 is untouched by a bf16 pass")
        let d = model.config.width
        let cosines = (0..<dataset.count).map { i in cosine(reference[(i * d)..<((i + 1) * d)], low[(i * d)..<((i + 1) * d)]) }
        let mean = cosines.reduce(0, +) / Double(cosines.count)
        XCTAssertGreaterThanOrEqual(mean, 0.999, "mean cosine \(mean)")
        XCTAssertGreaterThanOrEqual(cosines.min() ?? 0, 0.995, "min cosine \(cosines.min() ?? 0)")
        print(String(format: "bf16 vs fp32 features on %d real patches: mean cosine %.6f, min %.6f", cosines.count, mean, cosines.min() ?? 0))
    }
}

/// The bf16 attention reads heads in place from the packed q|k|v rows and writes its gradient
/// there: its strides are checked against the fp32 products, forward and backward.
final class AttentionPrecisionTests: XCTestCase {
    func testBF16AttentionFollowsFP32() throws {
        try XCTSkipUnless(Precision.bf16Available, "no AVX-512 BF16 on this CPU")
        var generator = SeededGenerator(seed: 12)
        let (batch, tokens, width, heads) = (3, 37, 48, 3)
        let qkv = (0..<(batch * tokens * 3 * width)).map { _ in generator.normal() }
        let attention = Attention(width: width, heads: heads)
        let reference = try qkv.withUnsafeBufferPointer { try Array(UnsafeBufferPointer(start: attention.forward($0.baseAddress!, batch: batch, tokens: tokens),
                                                                                    count: batch * tokens * width)) }
        attention.precision = .bf16
        let low = try qkv.withUnsafeBufferPointer { try Array(UnsafeBufferPointer(start: attention.forward($0.baseAddress!, batch: batch, tokens: tokens),
                                                                              count: batch * tokens * width)) }
        let scale = reference.map(abs).max() ?? 1
        let worst = zip(reference, low).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThan(worst / scale, 0.02, "bf16 attention differs from fp32 by \(worst) (scale \(scale))")
        XCTAssertGreaterThan(worst, 0, "the bf16 path ran")

        // Backward: the four bf16 products per head against fp32, q, k and v parts separately.
        let dOut = (0..<(batch * tokens * width)).map { _ in generator.normal() }
        func gradient(_ precision: Precision) throws -> [Float] {
            let layer = Attention(width: width, heads: heads)
            layer.precision = precision
            try qkv.withUnsafeBufferPointer { _ = try layer.forward($0.baseAddress!, batch: batch, tokens: tokens) }
            let d = try dOut.withUnsafeBufferPointer { try layer.backward($0.baseAddress!) }
            return Array(UnsafeBufferPointer(start: d, count: batch * tokens * 3 * width))
        }
        let (exact, rounded) = try (gradient(.fp32), gradient(.bf16))
        XCTAssertNotEqual(exact, rounded, "the bf16 backward ran")
        for (part, name) in ["q", "k", "v"].enumerated() {
            func columns(_ g: [Float]) -> [Float] {
                (0..<(batch * tokens)).flatMap { (row: Int) -> ArraySlice<Float> in
                    let start = row * 3 * width + part * width
                    return g[start..<(start + width)]
                }
            }
            let similarity = cosine(columns(exact)[...], columns(rounded)[...])
            XCTAssertGreaterThan(similarity, 0.999, "d\(name): cosine \(similarity) between bf16 and fp32")
        }
    }
}

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

/// Cosine of two vectors, in double precision.
private func cosine(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
    var dot = 0.0, aa = 0.0, bb = 0.0
    for (x, y) in zip(a, b) {
        dot += Double(x) * Double(y)
        aa += Double(x) * Double(x)
        bb += Double(y) * Double(y)
    }
    return dot / (aa * bb).squareRoot()
}
