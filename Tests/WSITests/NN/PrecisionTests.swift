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

/// Cosine of two vectors, in double precision.
func cosine(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
    var dot = 0.0, aa = 0.0, bb = 0.0
    for (x, y) in zip(a, b) {
        dot += Double(x) * Double(y)
        aa += Double(x) * Double(x)
        bb += Double(y) * Double(y)
    }
    return dot / (aa * bb).squareRoot()
}
