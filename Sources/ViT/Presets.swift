import Foundation
import Imaging

/// A published encoder: its architecture and transform, how TRIDENT tiles for it, and where its
/// weights come from. One table; `wsi encoders` prints it and a test holds each architecture's
/// tensor list equal to the published file's.
public struct EncoderPreset: Sendable {
    public var name: String
    public var model: String
    public var config: ViTConfig
    /// TRIDENT's tiling for it: 20× (0.5 µm/px) and this many pixels.
    public var tileSize: Int
    public var tileMPP: Double = 0.5
    /// Where to download the weights, and the gate in front of them.
    public var weights: String
    public var licence: String

    public var parameterCount: Int {
        WeightLayout(config: config, hiddenWidth: config.hiddenWidth).tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
    }
}

public enum EncoderPresets {
    private static let imageNet = TransformConfig.imageNet
    private static func crop224(_ mean: [Double] = imageNet.mean, _ std: [Double] = imageNet.std, resize: Int = 224,
                                _ filter: PillowFilter = .bilinear) -> TransformConfig {
        TransformConfig(resize: resize, interpolation: filter, centerCrop: 224, mean: mean, std: std)
    }
    private static func plain224(_ mean: [Double] = imageNet.mean, _ std: [Double] = imageNet.std, _ filter: PillowFilter = .bilinear) -> TransformConfig {
        TransformConfig(resize: 224, interpolation: filter, centerCrop: nil, mean: mean, std: std)
    }
    private static let kaikoTransform = crop224([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    private static let hoptimusTransform = plain224([0.707223, 0.578729, 0.703617], [0.211883, 0.230117, 0.177517])
    private static let virchowTransform = plain224(imageNet.mean, imageNet.std, .bicubic)

    private static func giant(registers: Int, noEmbedClass: Bool, transform: TransformConfig, patch: Int = 14) -> ViTConfig {
        ViTConfig(patchSize: patch, width: 1536, depth: 40, heads: 24, mlpRatio: 5.33333, mlp: .swigluPacked, initValues: 1e-5,
                  registerTokens: registers, noEmbedClass: noEmbedClass, transform: transform)
    }
    private static func virchow(registers: Int) -> ViTConfig {
        ViTConfig(patchSize: 14, width: 1280, depth: 32, heads: 16, mlpRatio: 5.3375, mlp: .swigluPacked, initValues: 1e-5,
                  registerTokens: registers, pooling: .tokenMean, transform: virchowTransform)
    }
    private static func small(patch: Int, transform: TransformConfig) -> ViTConfig {
        ViTConfig(patchSize: patch, width: 384, depth: 12, heads: 6, transform: transform)
    }
    private static func base(patch: Int, names: WeightNames = .timm, epsilon: Double = 1e-6, transform: TransformConfig) -> ViTConfig {
        ViTConfig(names: names, patchSize: patch, width: 768, depth: 12, heads: 12, normEpsilon: epsilon, transform: transform)
    }

    private static let nonCommercial = "CC-BY-NC-ND-4.0, gated: accept the terms on the model page while logged in"

    public static let all: [EncoderPreset] = [
        EncoderPreset(name: "uni_v1", model: "UNI (ViT-L/16)",
                      config: ViTConfig(patchSize: 16, width: 1024, depth: 24, heads: 16, initValues: 1e-5, transform: crop224()),
                      tileSize: 256, weights: "huggingface.co/MahmoodLab/UNI pytorch_model.bin", licence: nonCommercial),
        EncoderPreset(name: "uni_v2", model: "UNI2-h (ViT-H/14, 8 registers)",
                      config: ViTConfig(patchSize: 14, width: 1536, depth: 24, heads: 24, mlpRatio: 5.33333, mlp: .swigluPacked,
                                        initValues: 1e-5, registerTokens: 8, noEmbedClass: true, transform: crop224()),
                      tileSize: 256, weights: "huggingface.co/MahmoodLab/UNI2-h pytorch_model.bin", licence: nonCommercial),
        EncoderPreset(name: "virchow", model: "Virchow (ViT-H/14)", config: virchow(registers: 0), tileSize: 224,
                      weights: "huggingface.co/paige-ai/Virchow pytorch_model.bin", licence: nonCommercial),
        EncoderPreset(name: "virchow2", model: "Virchow2 (ViT-H/14, 4 registers)", config: virchow(registers: 4), tileSize: 224,
                      weights: "huggingface.co/paige-ai/Virchow2 pytorch_model.bin", licence: nonCommercial),
        EncoderPreset(name: "hoptimus0", model: "H-optimus-0 (ViT-g/14)", config: giant(registers: 4, noEmbedClass: true, transform: hoptimusTransform),
                      tileSize: 224, weights: "huggingface.co/bioptimus/H-optimus-0 pytorch_model.bin",
                      licence: "Apache-2.0, gated: accept the terms on the model page"),
        EncoderPreset(name: "hoptimus1", model: "H-optimus-1 (ViT-g/14)", config: giant(registers: 4, noEmbedClass: true, transform: hoptimusTransform),
                      tileSize: 224, weights: "huggingface.co/bioptimus/H-optimus-1 pytorch_model.bin",
                      licence: "non-commercial, gated: accept the terms on the model page"),
        EncoderPreset(name: "gigapath", model: "Prov-GigaPath tile encoder (ViT-g/16)",
                      config: giant(registers: 0, noEmbedClass: false, transform: crop224(resize: 256, .bicubic), patch: 16),
                      tileSize: 256, weights: "huggingface.co/prov-gigapath/prov-gigapath pytorch_model.bin",
                      licence: "Apache-2.0, gated: accept the terms on the model page"),
        EncoderPreset(name: "kaiko-vits16", model: "Kaiko ViT-S/16", config: small(patch: 16, transform: kaikoTransform), tileSize: 256,
                      weights: "huggingface.co/1aurent/vit_small_patch16_224.kaiko_ai_towards_large_pathology_fms (timm, safetensors)",
                      licence: "see kaiko.ai's model card; not gated"),
        EncoderPreset(name: "kaiko-vits8", model: "Kaiko ViT-S/8", config: small(patch: 8, transform: kaikoTransform), tileSize: 256,
                      weights: "huggingface.co/1aurent/vit_small_patch8_224.kaiko_ai_towards_large_pathology_fms (timm, safetensors)",
                      licence: "see kaiko.ai's model card; not gated"),
        EncoderPreset(name: "kaiko-vitb16", model: "Kaiko ViT-B/16", config: base(patch: 16, transform: kaikoTransform), tileSize: 256,
                      weights: "huggingface.co/1aurent/vit_base_patch16_224.kaiko_ai_towards_large_pathology_fms (timm, safetensors)",
                      licence: "see kaiko.ai's model card; not gated"),
        EncoderPreset(name: "kaiko-vitb8", model: "Kaiko ViT-B/8", config: base(patch: 8, transform: kaikoTransform), tileSize: 256,
                      weights: "huggingface.co/1aurent/vit_base_patch8_224.kaiko_ai_towards_large_pathology_fms (timm, safetensors)",
                      licence: "see kaiko.ai's model card; not gated"),
        EncoderPreset(name: "kaiko-vitl14", model: "Kaiko ViT-L/14 (4 registers, 518-px position grid)",
                      config: ViTConfig(imageSize: 518, patchSize: 14, width: 1024, depth: 24, heads: 16, initValues: 1e-5, registerTokens: 4,
                                        noEmbedClass: true, transform: kaikoTransform),
                      tileSize: 256, weights: "kaiko-ai towards_large_pathology_fms release (ViT-L/14 reg4)",
                      licence: "see kaiko.ai's model card; not gated"),
        EncoderPreset(name: "lunit-vits8", model: "Lunit DINO ViT-S/8", config: small(patch: 8, transform: crop224()), tileSize: 224,
                      weights: "github.com/lunit-io/benchmark-ssl-pathology releases (timm names)", licence: "non-commercial; not gated"),
        EncoderPreset(name: "phikon", model: "Phikon (ViT-B/16, HF ViT names)",
                      config: base(patch: 16, names: .hfViT, epsilon: 1e-12, transform: plain224()), tileSize: 224,
                      weights: "huggingface.co/owkin/phikon pytorch_model.bin (check layer_norm_eps in its config.json: 1e-12 early, 1e-6 later)",
                      licence: "Owkin non-commercial licence; not gated"),
    ]

    public static var names: [String] { all.map(\.name) }

    public static func named(_ name: String) -> EncoderPreset? { all.first { $0.name == name } }

    /// A preset's name, or a config file in the fixtures' schema (any other timm ViT), as a
    /// preset without a source.
    public static func resolve(_ nameOrPath: String) throws -> EncoderPreset {
        if let preset = named(nameOrPath) { return preset }
        if nameOrPath.hasSuffix(".json") {
            let config = try ViTConfig.read(path: nameOrPath)
            // A config.json is named by its folder (…/uni-like/config.json is "uni-like").
            let url = URL(fileURLWithPath: nameOrPath)
            let file = url.deletingPathExtension().lastPathComponent
            let stem = file == "config" ? url.deletingLastPathComponent().lastPathComponent : file
            return EncoderPreset(name: stem, model: "ViT from \(nameOrPath)", config: config, tileSize: config.transform.resize,
                                 weights: "given with --weights", licence: "")
        }
        throw EncoderError.unknownEncoder(name: nameOrPath, known: names)
    }

    /// The preset's encoder with the weights of `weights`, named and tiled as the preset says.
    public static func load(_ preset: EncoderPreset, weights: String) throws -> VisionTransformer {
        let model = try VisionTransformer.load(config: preset.config, weights: weights)
        model.name = preset.name
        model.tileSize = preset.tileSize
        return model
    }
}
