import Foundation
import NN
import Imaging
import Storage

/// Which naming a weight file uses: timm's (`blocks.0.attn.qkv.weight`) or Hugging Face
/// transformers' ViTModel (`encoder.layer.0.attention.attention.query.weight`, Phikon).
public enum WeightNames: String, Codable, Sendable, CaseIterable {
    case timm
    case hfViT = "hf-vit"
}

/// What one image's feature vector is made of, after the final norm.
public enum Pooling: String, Codable, Sendable, CaseIterable {
    /// The class token.
    case token
    /// The class token, then the mean of the patch tokens (Virchow): twice the width.
    case tokenMean = "token+mean"
    /// The mean of the patch tokens (prefix tokens excluded).
    case average = "avg"
}

/// TRIDENT's evaluation transform: Resize (shorter side, Pillow), optional CenterCrop, ToTensor,
/// Normalize.
public struct TransformConfig: Codable, Equatable, Sendable {
    public var resize: Int
    public var interpolation: PillowFilter
    public var centerCrop: Int?
    public var mean: [Double]
    public var std: [Double]

    enum CodingKeys: String, CodingKey {
        case resize, interpolation, mean, std
        case centerCrop = "center_crop"
    }

    public init(resize: Int, interpolation: PillowFilter = .bilinear, centerCrop: Int? = nil, mean: [Double], std: [Double]) {
        self.resize = resize
        self.interpolation = interpolation
        self.centerCrop = centerCrop
        self.mean = mean
        self.std = std
    }

    public static let imageNet = (mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    /// The side of the square the network sees.
    public var outputSize: Int { centerCrop ?? resize }
}

/// A timm VisionTransformer's switches (the schema of `encoders.md`: `config.json` of the
/// fixtures, the presets' JSON). One type describes UNI, Virchow, H-optimus, Kaiko, Phikon, …
public struct ViTConfig: Codable, Equatable, Sendable {
    public var names: WeightNames
    /// The input size the stored position grid was made for.
    public var imageSize: Int
    public var patchSize: Int
    public var width: Int
    public var depth: Int
    public var heads: Int
    public var mlpRatio: Double
    public var mlp: MLPKind
    /// LayerScale's initial value; nil: no LayerScale.
    public var initValues: Double?
    public var registerTokens: Int
    /// Positions cover the patch tokens only; the prefix tokens carry theirs folded in.
    public var noEmbedClass: Bool
    public var dynamicImageSize: Bool
    public var normEpsilon: Double
    public var pooling: Pooling
    public var transform: TransformConfig

    enum CodingKeys: String, CodingKey {
        case names, depth, transform
        case imageSize = "img_size", patchSize = "patch_size", width = "embed_dim", heads = "num_heads"
        case mlpRatio = "mlp_ratio", mlp = "mlp_layer", initValues = "init_values", registerTokens = "reg_tokens"
        case noEmbedClass = "no_embed_class", dynamicImageSize = "dynamic_img_size", normEpsilon = "norm_eps", pooling = "pool"
    }

    public init(names: WeightNames = .timm, imageSize: Int = 224, patchSize: Int, width: Int, depth: Int, heads: Int,
                mlpRatio: Double = 4, mlp: MLPKind = .gelu, initValues: Double? = nil, registerTokens: Int = 0,
                noEmbedClass: Bool = false, dynamicImageSize: Bool = true, normEpsilon: Double = 1e-6, pooling: Pooling = .token,
                transform: TransformConfig) {
        self.names = names
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.width = width
        self.depth = depth
        self.heads = heads
        self.mlpRatio = mlpRatio
        self.mlp = mlp
        self.initValues = initValues
        self.registerTokens = registerTokens
        self.noEmbedClass = noEmbedClass
        self.dynamicImageSize = dynamicImageSize
        self.normEpsilon = normEpsilon
        self.pooling = pooling
        self.transform = transform
    }

    /// Reads a config in the fixtures' schema (extra keys such as `tensors` are ignored).
    public static func read(path: String) throws -> ViTConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw EncoderError.unreadable(path: path, reason: "no such file or unreadable") }
        let config: ViTConfig
        do {
            config = try JSONText.decode(ViTConfig.self, from: data)
        } catch {
            throw EncoderError.unreadable(path: path, reason: "not a ViT config: \(error)")
        }
        try config.validate(source: path)
        return config
    }

    /// fc1's output width when no weights say otherwise: timm's int(width · ratio), rounded so
    /// the 5.33333 of a 1536-wide SwiGLU gives 8192; a packed SwiGLU's is even.
    public var hiddenWidth: Int {
        let hidden = Int((Double(width) * mlpRatio).rounded())
        return mlp == .swigluPacked ? hidden + hidden % 2 : hidden
    }

    public var prefixTokens: Int { 1 + registerTokens }
    public var storedGrid: Int { imageSize / patchSize }
    /// Positions in `pos_embed`.
    public var storedPositions: Int { storedGrid * storedGrid + (noEmbedClass ? 0 : prefixTokens) }
    public var featureWidth: Int { pooling == .tokenMean ? 2 * width : width }
    /// The grid the transform's output makes.
    public var inputGrid: Int { transform.outputSize / patchSize }

    /// Refuses what no network can be built from, naming `source`.
    public func validate(source: String) throws {
        func check(_ ok: Bool, _ reason: String) throws { if !ok { throw EncoderError.invalidConfig(source: source, reason: reason) } }
        try check((1...64).contains(patchSize), "patch_size \(patchSize) is outside 1–64")
        try check((1...16384).contains(width), "embed_dim \(width) is outside 1–16384")
        try check((1...256).contains(depth), "depth \(depth) is outside 1–256")
        try check((1...256).contains(heads) && width % heads == 0, "embed_dim \(width) is not divisible into \(heads) heads")
        try check(mlpRatio > 0 && mlpRatio <= 64 && hiddenWidth >= 1, "mlp_ratio \(mlpRatio) is outside (0, 64]")
        try check((0...64).contains(registerTokens), "reg_tokens \(registerTokens) is outside 0–64")
        try check(normEpsilon > 0 && normEpsilon < 1, "norm_eps \(normEpsilon) is outside (0, 1)")
        try check(initValues.map { $0.isFinite } ?? true, "init_values is not a finite number")
        try check((patchSize...8192).contains(imageSize) && imageSize % patchSize == 0,
                  "img_size \(imageSize) is not a multiple of patch_size \(patchSize) within 8192")
        let t = transform
        try check((1...8192).contains(t.resize), "transform.resize \(t.resize) is outside 1–8192")
        try check(t.centerCrop.map { (1...t.resize).contains($0) } ?? true, "transform.center_crop is larger than transform.resize")
        try check(t.outputSize % patchSize == 0, "the transform's \(t.outputSize) px are not a multiple of patch_size \(patchSize)")
        try check(t.outputSize == imageSize || dynamicImageSize,
                  "the transform gives \(t.outputSize) px but the position grid is for \(imageSize) px and dynamic_img_size is false")
        try check(t.mean.count == 3 && t.std.count == 3 && t.mean.allSatisfy(\.isFinite) && t.std.allSatisfy { $0.isFinite && $0 > 0 },
                  "transform.mean and transform.std need three finite values each, std above 0")
    }
}

public enum EncoderError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case invalidConfig(source: String, reason: String)
    case unknownEncoder(name: String, known: [String])
    case weightsMismatch(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): \(reason)"
        case let .invalidConfig(source, reason): return "\(source): \(reason)"
        case let .unknownEncoder(name, known):
            return "no encoder named '\(name)': give a preset (\(known.joined(separator: ", "))) or a config .json file"
        case let .weightsMismatch(path, reason): return "\(path): \(reason)"
        }
    }
}
