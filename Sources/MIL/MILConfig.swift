import Foundation

/// The architecture of an attention-MIL model, stored as JSON in a checkpoint's `config`
/// metadata with CLAM's names, so a converted CLAM checkpoint describes itself.
public struct MILConfig: Codable, Equatable, Sendable {
    public enum Model: String, Codable, Sendable, CaseIterable {
        /// Gated attention with CLAM's instance branch.
        case clamSB = "clam_sb"
        /// The same gated attention without the instance branch (Ilse et al. 2018).
        case abmil
    }

    public var model: Model
    /// D, the width of a tile's feature vector.
    public var embedDim: Int
    public var classes: Int
    /// (L, Da): the hidden width and the attention width.
    public var size: [Int]
    /// k tiles pseudo-labelled at each end of the attention ranking.
    public var kSample: Int
    /// Every other class's instance classifier also sees its top-k tiles as negatives.
    public var subtyping: Bool
    /// Weight of the bag loss; the instance loss gets the rest.
    public var bagWeight: Double
    /// Dropout on the hidden features while training (CLAM's `attention_net.2`).
    public var dropout: Double
    /// Class names in label order; checkpoints converted from CLAM may not have them.
    public var classNames: [String]?

    public init(model: Model = .clamSB, embedDim: Int, classes: Int, size: [Int] = [512, 256], kSample: Int = 8,
                subtyping: Bool = false, bagWeight: Double = 0.7, dropout: Double = 0.25, classNames: [String]? = nil) {
        self.model = model
        self.embedDim = embedDim
        self.classes = classes
        self.size = size
        self.kSample = kSample
        self.subtyping = subtyping
        self.bagWeight = bagWeight
        self.dropout = dropout
        self.classNames = classNames
    }

    public var hidden: Int { size[0] }
    public var attentionWidth: Int { size[1] }
    public var hasInstanceBranch: Bool { model == .clamSB }

    /// The name of class `index`: its given name, or its number for a checkpoint without names.
    public func className(_ index: Int) -> String {
        if let classNames, classNames.indices.contains(index) { return classNames[index] }
        return String(index)
    }

    enum CodingKeys: String, CodingKey {
        case model, classes, size, subtyping
        case embedDim = "embed_dim", kSample = "k_sample", bagWeight = "bag_weight", dropout = "drop_out", classNames = "class_names"
    }

    /// Only the architecture is required; training settings fall back to CLAM's defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(model: try c.decodeIfPresent(Model.self, forKey: .model) ?? .clamSB,
                  embedDim: try c.decode(Int.self, forKey: .embedDim),
                  classes: try c.decode(Int.self, forKey: .classes),
                  size: try c.decodeIfPresent([Int].self, forKey: .size) ?? [512, 256],
                  kSample: try c.decodeIfPresent(Int.self, forKey: .kSample) ?? 8,
                  subtyping: try c.decodeIfPresent(Bool.self, forKey: .subtyping) ?? false,
                  bagWeight: try c.decodeIfPresent(Double.self, forKey: .bagWeight) ?? 0.7,
                  dropout: try c.decodeIfPresent(Double.self, forKey: .dropout) ?? 0.25,
                  classNames: try c.decodeIfPresent([String].self, forKey: .classNames))
    }

    /// Why this configuration cannot build a model, or nil. Bounds keep a hostile file from
    /// asking for terabytes.
    public var problem: String? {
        if !(1...65536).contains(embedDim) { return "embed_dim \(embedDim) is outside 1...65536" }
        if !(2...1000).contains(classes) { return "classes \(classes) is outside 2...1000" }
        if size.count != 2 || !size.allSatisfy({ (1...16384).contains($0) }) { return "size \(size) is not two widths in 1...16384" }
        if !(1...4096).contains(kSample) { return "k_sample \(kSample) is outside 1...4096" }
        if !(0...1).contains(bagWeight) { return "bag_weight \(bagWeight) is outside 0...1" }
        if !(0..<1).contains(dropout) { return "drop_out \(dropout) is outside [0, 1)" }
        if let classNames, classNames.count != classes { return "class_names has \(classNames.count) names for \(classes) classes" }
        return nil
    }
}
