import Foundation
import NN
import Storage

/// The tensors a weight file of a config holds, in the file's naming: each of the model's
/// parameters and the file tensors it is made of (HF ViT keeps q, k and v as three Linears that
/// timm packs into one `qkv`).
public struct WeightLayout: Sendable {
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
    }
    /// Per model parameter (timm name): its parts in the file, concatenated along the first axis.
    public let parts: [(parameter: String, tensors: [Tensor])]

    public var tensors: [Tensor] { parts.flatMap(\.tensors) }

    public init(config: ViTConfig, hiddenWidth: Int) {
        let d = config.width, p = config.patchSize, h = hiddenWidth
        let mlpOut = config.mlp == .swigluPacked ? h / 2 : h
        var timm: [(String, [Int])] = [("cls_token", [1, 1, d])]
        if config.registerTokens > 0 { timm.append(("reg_token", [1, config.registerTokens, d])) }
        timm += [("pos_embed", [1, config.storedPositions, d]), ("patch_embed.proj.weight", [d, 3, p, p]), ("patch_embed.proj.bias", [d])]
        for i in 0..<config.depth {
            let b = "blocks.\(i)."
            timm += [(b + "norm1.weight", [d]), (b + "norm1.bias", [d]), (b + "attn.qkv.weight", [3 * d, d]), (b + "attn.qkv.bias", [3 * d]),
                     (b + "attn.proj.weight", [d, d]), (b + "attn.proj.bias", [d])]
            if config.initValues != nil { timm.append((b + "ls1.gamma", [d])) }
            timm += [(b + "norm2.weight", [d]), (b + "norm2.bias", [d]), (b + "mlp.fc1.weight", [h, d]), (b + "mlp.fc1.bias", [h]),
                     (b + "mlp.fc2.weight", [d, mlpOut]), (b + "mlp.fc2.bias", [d])]
            if config.initValues != nil { timm.append((b + "ls2.gamma", [d])) }
        }
        timm += [("norm.weight", [d]), ("norm.bias", [d])]
        switch config.names {
        case .timm: parts = timm.map { ($0.0, [Tensor(name: $0.0, shape: $0.1)]) }
        case .hfViT: parts = timm.map { ($0.0, Self.huggingFace($0.0, shape: $0.1)) }
        }
    }

    /// transformers' ViTModel names of a timm parameter.
    private static func huggingFace(_ name: String, shape: [Int]) -> [Tensor] {
        let fixed = ["cls_token": "embeddings.cls_token", "pos_embed": "embeddings.position_embeddings",
                     "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
                     "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
                     "norm.weight": "layernorm.weight", "norm.bias": "layernorm.bias"]
        if let mapped = fixed[name] { return [Tensor(name: mapped, shape: shape)] }
        let pieces = name.split(separator: ".").map(String.init)      // blocks, i, module…, weight|bias
        let layer = "encoder.layer.\(pieces[1]).", kind = pieces.last!
        switch pieces[2...].dropLast().joined(separator: ".") {
        case "attn.qkv":
            var third = shape
            third[0] /= 3
            return ["query", "key", "value"].map { Tensor(name: layer + "attention.attention.\($0).\(kind)", shape: third) }
        case "norm1": return [Tensor(name: layer + "layernorm_before." + kind, shape: shape)]
        case "attn.proj": return [Tensor(name: layer + "attention.output.dense." + kind, shape: shape)]
        case "norm2": return [Tensor(name: layer + "layernorm_after." + kind, shape: shape)]
        case "mlp.fc1": return [Tensor(name: layer + "intermediate.dense." + kind, shape: shape)]
        default: return [Tensor(name: layer + "output.dense." + kind, shape: shape)]     // mlp.fc2
        }
    }

    /// The preset whose published file this tensor list most resembles, and whether it is that
    /// file exactly.
    public static func closestPreset(to tensors: [String: [Int]]) -> (name: String, exact: Bool)? {
        var best: (name: String, score: Int, exact: Bool)?
        for preset in EncoderPresets.all {
            let expected = WeightLayout(config: preset.config, hiddenWidth: preset.config.hiddenWidth).tensors
            let score = expected.filter { tensors[$0.name] == $0.shape }.count
            let exact = score == expected.count && expected.count == tensors.count
            if score > (best?.score ?? 0) { best = (preset.name, score, exact) }
        }
        return best.map { ($0.name, $0.exact) }
    }
}

extension VisionTransformer {
    /// The ViT of `config` with the weights of `path` (safetensors or a PyTorch checkpoint),
    /// loaded strictly: a missing, extra or misshapen tensor is named. Wrappers (`model`,
    /// `state_dict`) and prefixes (`module.`, `vit.`) are looked through; tensors outside the
    /// backbone's prefix (a classifier head) and HF's unused `pooler.` are left out.
    /// `trains`: for adaptation (every block keeps its own activations for backward).
    public static func load(config: ViTConfig, weights path: String, trains: Bool = false) throws -> VisionTransformer {
        let file = try TensorFile.open(path)
        let stored = try backboneTensors(file, config: config)
        let fc1 = config.names == .timm ? "blocks.0.mlp.fc1.weight" : "encoder.layer.0.intermediate.dense.weight"
        let hidden = stored[fc1]?.entry.shape.first ?? config.hiddenWidth
        let layout = WeightLayout(config: config, hiddenWidth: hidden)
        try check(layout, against: stored, path: path)
        let model = VisionTransformer(config: config, hiddenWidth: hidden, seed: nil, trains: trains)
        let byName = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0) })
        for (name, tensors) in layout.parts {
            guard let parameter = byName[name] else { continue }
            var offset = 0
            for tensor in tensors {
                guard let source = stored[tensor.name] else { continue }
                try file.read(source.fileName, into: parameter.value.pointer + offset)
                offset += source.entry.count
            }
        }
        if let bad = model.parameters.first(where: { p in (0..<p.count).contains { !p.value[$0].isFinite } }) {
            throw EncoderError.weightsMismatch(path: path, reason: "\(bad.name) holds values that are not finite numbers")
        }
        model.weightsChanged()
        return model
    }

    /// The file's backbone tensors by their name without wrapper prefixes.
    private static func backboneTensors(_ file: TensorFile, config: ViTConfig) throws -> [String: (fileName: String, entry: TensorEntry)] {
        let anchors: [(WeightNames, String)] = [(.timm, "patch_embed.proj.weight"), (.hfViT, "embeddings.patch_embeddings.projection.weight")]
        var found: (names: WeightNames, prefix: String)?
        for name in file.names {
            for (names, anchor) in anchors where name == anchor || name.hasSuffix("." + anchor) {
                let prefix = String(name.dropLast(anchor.count))
                if found == nil || prefix.count < found!.prefix.count { found = (names, prefix) }
            }
        }
        guard let found else {
            throw EncoderError.weightsMismatch(path: file.path, reason: "no patch embedding (patch_embed.proj.weight or "
                + "embeddings.patch_embeddings.projection.weight) among its \(file.names.count) tensors: not a ViT's weights")
        }
        guard found.names == config.names else {
            throw EncoderError.weightsMismatch(path: file.path, reason: "the file uses \(found.names.rawValue) names but the encoder's config "
                + "says \(config.names.rawValue) (set \"names\": \"\(found.names.rawValue)\")")
        }
        var tensors: [String: (String, TensorEntry)] = [:]
        for name in file.names where name.hasPrefix(found.prefix) {
            let short = String(name.dropFirst(found.prefix.count))
            if config.names == .hfViT && short.hasPrefix("pooler.") { continue }
            tensors[short] = (name, file.entries[name]!)
        }
        return tensors
    }

    private static func check(_ layout: WeightLayout, against stored: [String: (fileName: String, entry: TensorEntry)], path: String) throws {
        let expected = layout.tensors
        let expectedNames = Set(expected.map(\.name))
        let missing = expected.filter { stored[$0.name] == nil }.map(\.name)
        let extra = stored.keys.filter { !expectedNames.contains($0) }.sorted()
        let misshapen = expected.compactMap { tensor -> String? in
            guard let entry = stored[tensor.name]?.entry, entry.shape != tensor.shape else { return nil }
            return "\(tensor.name) is \(entry.shape) in the file, \(tensor.shape) in the model"
        }
        guard !missing.isEmpty || !extra.isEmpty || !misshapen.isEmpty else { return }
        func list(_ names: [String]) -> String {
            names.prefix(4).joined(separator: ", ") + (names.count > 4 ? " and \(names.count - 4) more" : "")
        }
        var problems: [String] = []
        if !missing.isEmpty { problems.append("missing \(list(missing))") }
        if !extra.isEmpty { problems.append("not in the model: \(list(extra))") }
        if !misshapen.isEmpty { problems.append(list(misshapen)) }
        var reason = "the weights do not fit the encoder: " + problems.joined(separator: "; ")
        let shapes = stored.mapValues(\.entry.shape)
        if let closest = WeightLayout.closestPreset(to: shapes), closest.exact {
            reason += ". The file is the \(closest.name) model: use --encoder \(closest.name)"
        } else {
            reason += ". The file holds " + describe(shapes)
            if let closest = WeightLayout.closestPreset(to: shapes) { reason += "; of the presets it looks most like \(closest.name)" }
        }
        throw EncoderError.weightsMismatch(path: path, reason: reason)
    }

    /// What a file's shapes say about its architecture, in the config's words.
    private static func describe(_ shapes: [String: [Int]]) -> String {
        let embed = shapes["patch_embed.proj.weight"] ?? shapes["embeddings.patch_embeddings.projection.weight"] ?? []
        guard embed.count == 4 else { return "no patch embedding of the usual shape" }
        let depth = Set(shapes.keys.compactMap { name -> Int? in
            let parts = name.split(separator: ".")
            guard parts.count > 2, parts[0] == "blocks" || parts[0] == "layer" || (parts[0] == "encoder" && parts[1] == "layer") else { return nil }
            return Int(parts[0] == "encoder" ? parts[2] : parts[1])
        }).count
        let registers = shapes["reg_token"]?[1] ?? 0
        let positions = (shapes["pos_embed"] ?? shapes["embeddings.position_embeddings"])?.dropFirst().first ?? 0
        return "a ViT with embed_dim \(embed[0]), depth \(depth), patch_size \(embed[2]), reg_tokens \(registers), \(positions) positions"
    }
}
