import CKernels
import Foundation
import NN
import SDMAE
import Tiling
import XCTest

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
