import Foundation
import Imaging
import NN
import Storage
@testable import ViT
import XCTest

/// The six scaled-down copies of published encoders (Tests/Data/encoders, made by timm and
/// transformers on four real tiles) against PyTorch's fp32 outputs: the transform's pixels within
/// one 8-bit step, tokens and pooled features within 1e-4.
final class EncoderFixtureTests: XCTestCase {
    static let root = TestData.path("encoders")

    struct Fixture {
        let name: String
        let config: ViTConfig
        let expected: [String: NamedTensor]
        let images: [RGBImage]

        init(_ name: String) throws {
            self.name = name
            let folder = EncoderFixtureTests.root + "/" + name
            config = try ViTConfig.read(path: folder + "/config.json")
            expected = try Safetensors.read(path: folder + "/expected.safetensors").tensors
            let order = try JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/images.json")))
            images = try order.map { try RGBImage.read(path: EncoderFixtureTests.root + "/images/" + $0) }
        }

        var pixels: [Float] { images.flatMap { config.transform.apply($0) } }

        func weights(_ file: String) -> String { EncoderFixtureTests.root + "/" + name + "/" + file }
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) values against \(b.count)")
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    /// One 8-bit step of the input, after Normalize, per channel.
    func assertPixels(_ fixture: Fixture, file: StaticString = #filePath, line: UInt = #line) throws {
        let ours = fixture.pixels, theirs = try XCTUnwrap(fixture.expected["pixels"]).floats
        let side = fixture.config.transform.outputSize, plane = side * side
        var worstSteps: Float = 0
        for i in 0..<ours.count {
            let std = Float(fixture.config.transform.std[(i / plane) % 3])
            worstSteps = max(worstSteps, abs(ours[i] - theirs[i]) * std * 255)
        }
        XCTAssertLessThanOrEqual(worstSteps, 1.001, "\(fixture.name): pixels differ by \(worstSteps) 8-bit steps", file: file, line: line)
    }

    func assertOutputs(_ fixture: Fixture, weights: String, expected: [String: NamedTensor]? = nil, tolerance: Float = 1e-4,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try VisionTransformer.load(config: fixture.config, weights: fixture.weights(weights))
        let expected = expected ?? fixture.expected
        // PyTorch's own pixels, so the network is checked apart from the transform.
        let pixels = try XCTUnwrap(fixture.expected["pixels"]).floats
        let side = fixture.config.transform.outputSize, batch = fixture.images.count, t = model.tokenCount(side: side)
        let tokens = try pixels.withUnsafeBufferPointer {
            try Array(UnsafeBufferPointer(start: model.tokens($0.baseAddress!, batch: batch, side: side), count: batch * t * fixture.config.width))
        }
        let expectedTokens = try XCTUnwrap(expected["tokens"])
        XCTAssertEqual(expectedTokens.shape, [batch, t, fixture.config.width], file: file, line: line)
        XCTAssertLessThan(Self.maxDifference(tokens, expectedTokens.floats), tolerance, "\(fixture.name) tokens", file: file, line: line)
        let features = try pixels.withUnsafeBufferPointer { try model.features($0.baseAddress!, batch: batch, side: side) }
        let expectedFeatures = try XCTUnwrap(expected["features"])
        XCTAssertEqual(expectedFeatures.shape, [batch, model.featureWidth], file: file, line: line)
        XCTAssertLessThan(Self.maxDifference(features, expectedFeatures.floats), tolerance, "\(fixture.name) features", file: file, line: line)
    }

    func testUNILike() throws {
        let fixture = try Fixture("uni-like")
        try assertPixels(fixture)
        try assertOutputs(fixture, weights: "model.safetensors")
        try assertOutputs(fixture, weights: "pytorch_model.bin")
    }

    /// bf16 storages are widened exactly; the outputs are PyTorch's for the rounded weights.
    func testUNILikeFromBFloat16Storages() throws {
        let fixture = try Fixture("uni-like")
        let expected = try Safetensors.read(path: fixture.weights("expected-bf16-weights.safetensors")).tensors
        try assertOutputs(fixture, weights: "pytorch_model-bf16.bin", expected: expected)
    }

    func testUNI2hLike() throws {
        let fixture = try Fixture("uni2h-like")
        try assertPixels(fixture)
        try assertOutputs(fixture, weights: "model.safetensors")
    }

    func testVirchow2Like() throws {
        let fixture = try Fixture("virchow2-like")
        try assertPixels(fixture)
        try assertOutputs(fixture, weights: "pytorch_model.bin")
    }

    func testHOptimusLike() throws {
        let fixture = try Fixture("hoptimus-like")
        try assertPixels(fixture)
        try assertOutputs(fixture, weights: "model.safetensors")
    }

    func testKaikoL14LikeResamplesItsPositionGrid() throws {
        let fixture = try Fixture("kaiko-l14-like")
        XCTAssertEqual(fixture.config.storedGrid, 37)
        XCTAssertEqual(fixture.config.inputGrid, 16)
        try assertPixels(fixture)
        try assertOutputs(fixture, weights: "model.safetensors")
    }

    func testPhikonLikeWithHuggingFaceNames() throws {
        let fixture = try Fixture("phikon-like")
        try assertPixels(fixture)
        try assertOutputs(fixture, weights: "model.safetensors")
    }

    /// bf16 products (where the CPU has them): cosine ≥ 0.999 to PyTorch's fp32 features.
    func testBFloat16FeaturesAgreeWithFloat32() throws {
        try XCTSkipUnless(Precision.bf16Available, "no AVX-512 BF16 on this CPU")
        for name in ["uni-like", "uni2h-like", "virchow2-like", "hoptimus-like", "kaiko-l14-like", "phikon-like"] {
            let fixture = try Fixture(name)
            let weights = FileManager.default.fileExists(atPath: fixture.weights("model.safetensors")) ? "model.safetensors" : "pytorch_model.bin"
            let model = try VisionTransformer.load(config: fixture.config, weights: fixture.weights(weights))
            model.precision = .bf16
            let pixels = try XCTUnwrap(fixture.expected["pixels"]).floats
            let side = fixture.config.transform.outputSize, f = model.featureWidth
            let ours = try pixels.withUnsafeBufferPointer { try model.features($0.baseAddress!, batch: 4, side: side) }
            let theirs = try XCTUnwrap(fixture.expected["features"]).floats
            for image in 0..<4 {
                let a = ours[(image * f)..<((image + 1) * f)], b = theirs[(image * f)..<((image + 1) * f)]
                let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let cosine = dot / (a.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot() * b.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot())
                XCTAssertGreaterThanOrEqual(cosine, 0.999, "\(name) image \(image) in bf16")
            }
        }
    }
}
