import Foundation
import NN
import Storage
@testable import ViT
import XCTest

/// Reading published weight files: the pickle reader refuses code, loading is strict and names
/// what does not fit, and every preset's tensors equal the published file's list.
final class WeightFileTests: XCTestCase {
    /// A zip archive of stored (uncompressed) members, as torch.save writes them.
    static func storedZip(_ members: [(String, [UInt8])]) -> Data {
        var data = Data(), directory = Data()
        func le(_ value: Int, _ bytes: Int, into out: inout Data) { for i in 0..<bytes { out.append(UInt8((value >> (8 * i)) & 0xFF)) } }
        for (name, bytes) in members {
            let offset = data.count, nameBytes = Array(name.utf8)
            le(0x04034B50, 4, into: &data); le(20, 2, into: &data); le(0, 2, into: &data); le(0, 2, into: &data)
            le(0, 4, into: &data); le(0, 4, into: &data); le(bytes.count, 4, into: &data); le(bytes.count, 4, into: &data)
            le(nameBytes.count, 2, into: &data); le(0, 2, into: &data)
            data.append(contentsOf: nameBytes); data.append(contentsOf: bytes)
            le(0x02014B50, 4, into: &directory); le(20, 2, into: &directory); le(20, 2, into: &directory); le(0, 2, into: &directory)
            le(0, 2, into: &directory); le(0, 4, into: &directory); le(0, 4, into: &directory); le(bytes.count, 4, into: &directory)
            le(bytes.count, 4, into: &directory); le(nameBytes.count, 2, into: &directory); le(0, 2, into: &directory)
            le(0, 2, into: &directory); le(0, 2, into: &directory); le(0, 2, into: &directory); le(0, 4, into: &directory)
            le(offset, 4, into: &directory); directory.append(contentsOf: nameBytes)
        }
        let directoryOffset = data.count
        data.append(directory)
        le(0x06054B50, 4, into: &data); le(0, 2, into: &data); le(0, 2, into: &data); le(members.count, 2, into: &data)
        le(members.count, 2, into: &data); le(directory.count, 4, into: &data); le(directoryOffset, 4, into: &data); le(0, 2, into: &data)
        return data
    }

    func testAPickleThatCallsCodeIsRefusedByName() throws {
        let folder = TestData.scratchDirectory()
        let marker = folder + "/ran"
        // os.system("touch <marker>") as protocol 2 (GLOBAL) and builtins.eval as protocol 4 (STACK_GLOBAL).
        let command = Array("touch \(marker)".utf8)
        let systemCall: [UInt8] = [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x58] + [UInt8(command.count), 0, 0, 0] + command
            + [0x85, 0x52, 0x2E]
        let evalCall: [UInt8] = [0x80, 0x04, 0x8C, 8] + Array("builtins".utf8) + [0x8C, 4] + Array("eval".utf8) + [0x93]
            + [0x8C, 7] + Array("print()".utf8) + [0x85, 0x52, 0x2E]
        for (pickle, global) in [(systemCall, "os.system"), (evalCall, "builtins.eval")] {
            let path = folder + "/evil.bin"
            try Self.storedZip([("evil/data.pkl", pickle), ("evil/version", Array("3\n".utf8))]).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try TensorFile.open(path)) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.contains("refused") && text.contains(global), text)
                XCTAssertTrue(text.contains(path), text)
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the pickle's code ran")
        // A forged shape whose element count overflows: refused, not trapped.
        let forged: [UInt8] = [0x80, 0x02, 0x7D] + [0x58, 1, 0, 0, 0] + Array("w".utf8) + Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8)
            + [0x28, 0x28] + [0x58, 7, 0, 0, 0] + Array("storage".utf8) + Array("ctorch\nFloatStorage\n".utf8)
            + [0x58, 1, 0, 0, 0, 0x30, 0x58, 3, 0, 0, 0] + Array("cpu".utf8) + [0x4B, 4, 0x74, 0x51, 0x4B, 0]
            + [0x8A, 5, 0, 0, 0, 0, 0x7F, 0x8A, 5, 0, 0, 0, 0, 0x7F, 0x8A, 5, 0, 0, 0, 0, 0x7F, 0x87]
            + [0x4B, 1, 0x4B, 1, 0x4B, 1, 0x87, 0x89, 0x29, 0x74, 0x52, 0x73, 0x2E]
        let path = folder + "/forged.bin"
        try Self.storedZip([("forged/data.pkl", forged), ("forged/data/0", [UInt8](repeating: 0, count: 16))]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try TensorFile.open(path)) { error in
            XCTAssertTrue(String(describing: error).contains("larger than any model"), String(describing: error))
        }
    }

    func testCheckpointsAreReadWithWrappersAndPrefixes() throws {
        let file = try TensorFile.open(EncoderFixtureTests.root + "/uni-like/pytorch_model.bin")
        XCTAssertEqual(file.names.first, "cls_token")
        XCTAssertEqual(file.entries["patch_embed.proj.weight"]?.shape, [64, 3, 16, 16])
        // The same tensors inside {"model": …} with a module. prefix, as DDP checkpoints are saved.
        let original = try TensorFile.open(EncoderFixtureTests.root + "/uni-like/model.safetensors")
        let wrapped = try original.names.map { (name: "model.module." + $0, shape: original.entries[$0]!.shape, values: try original.read($0)) }
        let folder = TestData.scratchDirectory()
        try Safetensors.write(wrapped + [(name: "head.weight", shape: [2, 64], values: [Float](repeating: 0, count: 128))], to: folder + "/wrapped.safetensors")
        let fixture = try EncoderFixtureTests.Fixture("uni-like")
        let model = try VisionTransformer.load(config: fixture.config, weights: folder + "/wrapped.safetensors")
        XCTAssertEqual(model.parameters.first { $0.name == "blocks.1.mlp.fc2.weight" }?.value.array, try original.read("blocks.1.mlp.fc2.weight"))
    }

    /// F16 storages widen exactly: a half-precision copy of the fixture loads to the fp32 model
    /// with its weights rounded to half precision, bit for bit.
    func testHalfPrecisionStoragesWidenExactly() throws {
        let fixture = try EncoderFixtureTests.Fixture("uni-like")
        let source = try TensorFile.open(fixture.weights("model.safetensors"))
        var header: [String: Any] = [:], body = Data(), rounded: [String: [Float]] = [:]
        for name in source.names {
            let values = try source.read(name)
            rounded[name] = values.map { Float(Float16($0)) }
            let half = values.map { Float16($0).bitPattern }
            header[name] = ["dtype": "F16", "shape": source.entries[name]!.shape, "data_offsets": [body.count, body.count + 2 * half.count]]
            half.withUnsafeBytes { body.append(contentsOf: $0) }
        }
        let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        let path = TestData.scratchDirectory() + "/half.safetensors"
        try (file + json + body).write(to: URL(fileURLWithPath: path))
        let model = try VisionTransformer.load(config: fixture.config, weights: path)
        for parameter in model.parameters {
            XCTAssertEqual(parameter.value.array, rounded[parameter.name], parameter.name)
        }
        XCTAssertEqual(try TensorFile.open(path).entries["pos_embed"]?.dtype, .f16)
    }

    func testLoadingIsStrictAndNamesWhatDoesNotFit() throws {
        let fixture = try EncoderFixtureTests.Fixture("uni-like")
        let source = try TensorFile.open(fixture.weights("model.safetensors"))
        let folder = TestData.scratchDirectory()
        func write(_ edit: (inout [(name: String, shape: [Int], values: [Float])]) -> Void) throws -> String {
            var tensors = try source.names.map { (name: $0, shape: source.entries[$0]!.shape, values: try source.read($0)) }
            edit(&tensors)
            let path = folder + "/edited.safetensors"
            try Safetensors.write(tensors, to: path)
            return path
        }
        func assertRefused(_ path: String, saying words: [String], line: UInt = #line) {
            XCTAssertThrowsError(try VisionTransformer.load(config: fixture.config, weights: path), line: line) { error in
                let text = String(describing: error)
                for word in words { XCTAssertTrue(text.contains(word), "\(text) lacks '\(word)'", line: line) }
            }
        }
        assertRefused(try write { $0.removeAll { $0.name == "blocks.1.ls2.gamma" } }, saying: ["missing blocks.1.ls2.gamma"])
        assertRefused(try write { $0.append((name: "blocks.2.norm1.weight", shape: [64], values: [Float](repeating: 1, count: 64))) },
                      saying: ["not in the model: blocks.2.norm1.weight"])
        assertRefused(try write { t in
            let i = t.firstIndex { $0.name == "norm.bias" }!
            t[i] = (name: "norm.bias", shape: [2, 32], values: t[i].values)
        }, saying: ["norm.bias is [2, 32] in the file, [64] in the model"])
        assertRefused(try write { t in t[0].values[0] = .nan }, saying: ["not finite"])
        // Phikon-like weights (HF names) under a timm config.
        assertRefused(EncoderFixtureTests.root + "/phikon-like/model.safetensors", saying: ["hf-vit names"])
        // Another model's file altogether.
        assertRefused(EncoderFixtureTests.root + "/uni2h-like/model.safetensors", saying: ["not in the model: reg_token", "pos_embed is [1, 256, 96]", "embed_dim 96, depth 2, patch_size 14, reg_tokens 8"])
    }

    /// A file exactly like a preset's (shapes only) is named as that preset.
    func testAWrongModelsFileSaysWhichPresetItIs() throws {
        let preset = try XCTUnwrap(EncoderPresets.named("kaiko-vits16"))
        let layout = WeightLayout(config: preset.config, hiddenWidth: preset.config.hiddenWidth)
        let shapes = Dictionary(uniqueKeysWithValues: layout.tensors.map { ($0.name, $0.shape) })
        let closest = try XCTUnwrap(WeightLayout.closestPreset(to: shapes))
        XCTAssertTrue(closest.exact)
        // kaiko-vits16 and lunit-vits8 differ only in the patch size: the ViT-S/16 is named.
        XCTAssertEqual(closest.name, "kaiko-vits16")
        var other = shapes
        other["patch_embed.proj.weight"] = [384, 3, 8, 8]
        other["pos_embed"] = [1, 785, 384]
        XCTAssertEqual(WeightLayout.closestPreset(to: other)?.name, "kaiko-vits8")
    }

    /// Each preset's tensor names and shapes equal the published file's (Tests/Data/encoders/presets),
    /// and so does its parameter count.
    func testEveryPresetMatchesItsPublishedTensorList() throws {
        for preset in EncoderPresets.all {
            let path = EncoderFixtureTests.root + "/presets/\(preset.name).json"
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            let published = try XCTUnwrap(json["tensors"] as? [String: [Int]])
            let ours = WeightLayout(config: preset.config, hiddenWidth: preset.config.hiddenWidth).tensors
            XCTAssertEqual(ours.count, published.count, preset.name)
            for tensor in ours { XCTAssertEqual(published[tensor.name], tensor.shape, "\(preset.name): \(tensor.name)") }
            XCTAssertEqual(preset.parameterCount, json["parameters"] as? Int, preset.name)
            // The architecture and transform equal the published config too.
            let config = try JSONDecoder().decode(ViTConfig.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            XCTAssertEqual(config, preset.config, preset.name)
        }
    }

    func testConfigErrorsNameTheFileAndTheField() throws {
        let folder = TestData.scratchDirectory()
        let good = try String(contentsOfFile: EncoderFixtureTests.root + "/uni-like/config.json", encoding: .utf8)
        let edits: [((String, String), String)] = [(("\"num_heads\": 4", "\"num_heads\": 5"), "not divisible into 5 heads"),
                                                   (("\"patch_size\": 16", "\"patch_size\": 0"), "patch_size 0"),
                                                   (("\"pool\": \"token\"", "\"pool\": \"max\""), "'pool'"),
                                                   (("\"depth\": 2,", ""), "missing 'depth'")]
        for (edit, words) in edits {
            let path = folder + "/config.json"
            try good.replacingOccurrences(of: edit.0, with: edit.1).write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try ViTConfig.read(path: path)) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.contains(path) && text.contains(words), text)
            }
        }
        XCTAssertThrowsError(try EncoderPresets.resolve("uni").name) { XCTAssertTrue(String(describing: $0).contains("uni_v1, uni_v2")) }
    }
}
