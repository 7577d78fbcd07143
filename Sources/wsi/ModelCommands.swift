import Cluster
import Foundation
import NN
import Pipeline
import SDMAE
import Tiling
import ViT

/// A checkpoint written here carries its config; a PyTorch state dict needs the preset it was made with.
private let checkpointOptions = [
    ParameterSpec("checkpoint", .path, manifest: false, placeholder: "CKPT", help: "SD-MAE checkpoint (or a pretrain folder)"),
    ParameterSpec("preset", .choice(SDMAEConfig.presetNames), manifest: false, help: "config of a checkpoint that records none"),
]

private func commandLineOnly(_ spec: ParameterSpec) -> ParameterSpec {
    var spec = spec
    spec.inManifest = false
    return spec
}

private func loadModel(_ values: StageParameters) throws -> SDMAEModel {
    guard var checkpoint = values.string("checkpoint") else { throw UsageError("--checkpoint CKPT is required") }
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: checkpoint, isDirectory: &isDirectory), isDirectory.boolValue {
        checkpoint += "/" + RunFiles.finalModel
    }
    return try SDMAEModel.load(path: checkpoint, fallback: values.string("preset").flatMap(SDMAEConfig.preset))
}

struct EmbedCommand: DeclaredCommand {
    static let spec = CommandSpec(
        name: "embed", summary: "encoder features for every patch (a published ViT or an SD-MAE checkpoint)",
        synopsis: "--encoder NAME --weights FILE | --checkpoint CKPT  --data DIR... --out features.csv|features.safetensors [options]",
        details: """
        Encodes every patch with a published encoder (its transform and pooling) or with an SD-MAE
        checkpoint (all tokens, no masking, the mean of the normalised tokens). Writes CSV rows
        'name,f0,…', or safetensors tensor 'features' [N, D] with the names and encoder in the metadata.
        """,
        options: checkpointOptions + [
            ParameterSpec("data", .strings, required: true, manifest: false, placeholder: "DIR",
                          help: "folders of PNG/JPEG patches, tile stage folders or shards (repeatable)"),
            ParameterSpec("out", .string, required: true, manifest: false, placeholder: "PATH", help: ".csv or .safetensors file"),
            StageCommandLine.quiet,
        ] + EncoderInference.parameters.map(commandLineOnly))
    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        let values = try Self.spec.parseOptions(&arguments)
        guard let out = values.string("out"), out.hasSuffix(".csv") || out.hasSuffix(".safetensors") else {
            throw UsageError("--out must name a .csv or .safetensors file")
        }
        let encoder: any PatchEncoder
        let precision = EncoderInference.precision(values)
        switch try EncoderInference.choice(values) {
        case .checkpoint:
            encoder = try loadModel(values)
            encoder.precision = precision
        case let choice:
            encoder = try EncoderInference.load(choice, files: [], precision: precision)
        }
        var extractor = FeatureExtractor(encoder: encoder)
        extractor.batchSize = values.int("batch") ?? extractor.batchSize
        extractor.showProgress = !values.bool("quiet")
        let dataset = try PatchDataset(paths: values.strings("data"))
        let features = try extractor.run(dataset)
        try FeatureExtractor.write(features, names: (0..<dataset.count).map(dataset.name), width: encoder.featureWidth,
                                   encoder: encoder.encoderName, to: out)
        print("\(dataset.count) features of width \(encoder.featureWidth) from \(encoder.encoderName) → \(out)")
        return 0
    }
}

struct ReconstructCommand: DeclaredCommand {
    static let spec = CommandSpec(
        name: "reconstruct", summary: "picture of original | masked | reconstruction for a few patches",
        synopsis: "--checkpoint CKPT --data DIR... --out picture.png [options]",
        options: checkpointOptions + [
            ParameterSpec("data", .strings, required: true, manifest: false, placeholder: "DIR", help: "patch folders or shards (repeatable)"),
            ParameterSpec("out", .string, required: true, manifest: false, placeholder: "PNG", help: "the picture"),
            ParameterSpec("count", .int(1...64), default: .int(6), manifest: false, help: "patches shown"),
            ParameterSpec("seed", .int(0...Int(Int32.max)), default: .int(0), manifest: false, help: "which patches and masks"),
        ])
    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        let values = try Self.spec.parseOptions(&arguments)
        guard let out = values.string("out") else { throw UsageError("--out PNG is required") }
        let model = try loadModel(values)
        let dataset = try PatchDataset(paths: values.strings("data"))
        let seed = UInt64(values.int("seed") ?? 0)
        var generator = SeededGenerator(seed: seed)
        let indices = (0..<min(values.int("count") ?? 6, dataset.count)).map { _ in Int(generator.next() % UInt64(dataset.count)) }
        let images = try FeatureExtractor.loadImages(dataset, indices: indices, encoder: model, workers: 2)
        try ReconstructionPicture.render(model: model, images: images, batch: indices.count, seed: seed).write(to: out)
        print("reconstructions of \(indices.count) patches → \(out)")
        return 0
    }
}
