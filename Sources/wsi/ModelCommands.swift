import Cluster
import Foundation
import NN
import Pipeline
import SDMAE
import Tiling
import ViT

/// An SD-MAE checkpoint to load; one written here carries its config, a PyTorch state dict needs
/// the preset it was made with.
private enum CheckpointOptions {
    static let checkpoint = Option<String?>("checkpoint", .path, manifest: false, placeholder: "CKPT", help: "SD-MAE checkpoint (or a pretrain folder)")
    static let preset = Option<String?>("preset", .oneOf(SDMAEConfig.presetNames), manifest: false, help: "config of a checkpoint that records none")
    static let specs = [checkpoint.spec, preset.spec]

    static func loadModel(_ values: StageParameters) throws -> SDMAEModel {
        guard var path = values[checkpoint] else { throw UsageError("--checkpoint CKPT is required") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            path += "/" + RunFiles.finalModel
        }
        return try SDMAEModel.load(path: path, fallback: values[preset].flatMap(SDMAEConfig.preset))
    }
}

private func commandLineOnly(_ spec: ParameterSpec) -> ParameterSpec {
    var spec = spec
    spec.inManifest = false
    return spec
}

/// Folders of patches to read (repeatable).
private let dataOption = Option<[String]>("data", required: true, manifest: false, placeholder: "DIR",
                                          help: "folders of PNG/JPEG patches, tile stage folders or shards (repeatable)")

struct EmbedCommand: DeclaredCommand {
    static let out = Option<String>(required: "out", .text, manifest: false, placeholder: "PATH", help: ".csv or .safetensors file")
    static let spec = CommandSpec(
        name: "embed", summary: "encoder features for every patch (a published ViT or an SD-MAE checkpoint)",
        synopsis: "--encoder NAME --weights FILE | --checkpoint CKPT  --data DIR... --out features.csv|features.safetensors [options]",
        details: """
        Encodes every patch with a published encoder (its transform and pooling) or with an SD-MAE
        checkpoint (all tokens, no masking, the mean of the normalised tokens). Writes CSV rows
        'name,f0,…', or safetensors tensor 'features' [N, D] with the names and encoder in the metadata.
        """,
        options: CheckpointOptions.specs + [dataOption.spec, out.spec, StageCommandLine.quiet.spec] + EncoderInference.parameters.map(commandLineOnly))
    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        let values = try Self.spec.parseOptions(&arguments)
        let out = values[Self.out]
        guard out.hasSuffix(".csv") || out.hasSuffix(".safetensors") else {
            throw UsageError("--out must name a .csv or .safetensors file")
        }
        let encoder: any PatchEncoder
        let precision = values[EncoderInference.precision].resolved
        switch try EncoderInference.choice(values) {
        case .checkpoint:
            encoder = try CheckpointOptions.loadModel(values)
            encoder.precision = precision
        case let choice:
            encoder = try EncoderInference.load(choice, files: [], precision: precision)
        }
        var extractor = FeatureExtractor(encoder: encoder)
        extractor.batchSize = values[EncoderInference.batch]
        extractor.showProgress = !values[StageCommandLine.quiet]
        let dataset = try PatchDataset(paths: values[dataOption])
        let features = try extractor.run(dataset)
        try FeatureExtractor.write(features, names: (0..<dataset.count).map(dataset.name), width: encoder.featureWidth,
                                   encoder: encoder.encoderName, to: out)
        print("\(dataset.count) features of width \(encoder.featureWidth) from \(encoder.encoderName) → \(out)")
        return 0
    }
}

struct ReconstructCommand: DeclaredCommand {
    static let out = Option<String>(required: "out", .text, manifest: false, placeholder: "PNG", help: "the picture")
    static let count = Option<Int>("count", 1...64, default: 6, manifest: false, help: "patches shown")
    static let seed = Option<Int>("seed", 0...Int(Int32.max), default: 0, manifest: false, help: "which patches and masks")
    static let spec = CommandSpec(
        name: "reconstruct", summary: "picture of original | masked | reconstruction for a few patches",
        synopsis: "--checkpoint CKPT --data DIR... --out picture.png [options]",
        options: CheckpointOptions.specs + [dataOption.spec, out.spec, count.spec, seed.spec])
    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        let values = try Self.spec.parseOptions(&arguments)
        let out = values[Self.out]
        let model = try CheckpointOptions.loadModel(values)
        let dataset = try PatchDataset(paths: values[dataOption])
        let seed = UInt64(values[Self.seed])
        var generator = SeededGenerator(seed: seed)
        let indices = (0..<min(values[Self.count], dataset.count)).map { _ in Int(generator.next() % UInt64(dataset.count)) }
        let images = try FeatureExtractor.loadImages(dataset, indices: indices, encoder: model, workers: 2)
        try ReconstructionPicture.render(model: model, images: images, batch: indices.count, seed: seed).write(to: out)
        print("reconstructions of \(indices.count) patches → \(out)")
        return 0
    }
}
