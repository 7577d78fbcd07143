import Console
import Foundation
import NN
import SDMAE
import Tiling
import ViT

/// Which encoder a stage runs: a published ViT (`--encoder NAME|CONFIG.json --weights FILE`) or
/// an SD-MAE checkpoint (the `checkpoint` input). Declared once for features, predict,
/// train-classifier and evaluate.
public enum EncoderChoice: Sendable {
    case published(EncoderPreset, weights: String)
    case checkpoint
}

public enum EncoderInference {
    public static let batch = Option<Int>("batch", 1...4096, default: 64, help: "encoder batch size")
    public static let precision = Option<PrecisionChoice>("precision", default: .auto,
                                                          help: "encoder matrix products: auto is bf16 where the CPU has AVX-512 BF16 (features within 1e-5 cosine of fp32), else fp32")
    public static let encoder = Option<String?>("encoder", .nameOrPath(EncoderPresets.names), placeholder: "NAME|CONFIG.json",
                                                help: "a published encoder (`wsi encoders` lists them: uni_v1, virchow2, hoptimus0, …) or a timm ViT "
                                                + "described by a config .json; needs weights. Without it the checkpoint input is the encoder")
    public static let weights = Option<String?>("weights", .path, placeholder: "FILE",
                                                help: "the encoder's published weights: model.safetensors, pytorch_model.bin, .pth or .pt")
    /// For stages that only pick the encoder (train-classifier, evaluate).
    static let choiceParameters = [encoder.spec, weights.spec]
    public static let parameters = [batch.spec, precision.spec] + choiceParameters
    static let checkpointInput = InputSpec("checkpoint", required: false, unlessParameter: "encoder", reads: ["pretrain"],
                                           help: "the pretrain stage's folder or an SD-MAE checkpoint file (unless an encoder is given)")

    /// The encoder the options name, checked when the stage is read (a manifest fails before
    /// anything runs).
    public static func choice(_ p: StageParameters) throws -> EncoderChoice {
        guard let name = p[encoder] else {
            guard p[weights] == nil else { throw StageError.invalid("weights needs an encoder: give --encoder NAME or CONFIG.json") }
            return .checkpoint
        }
        let preset: EncoderPreset
        do { preset = try EncoderPresets.resolve(name) } catch { throw StageError.invalid(String(describing: error)) }
        guard let weights = p[weights] else {
            throw StageError.invalid("encoder \(name) needs its weights: --weights FILE (\(preset.weights))")
        }
        return .published(preset, weights: weights)
    }

    /// The files the encoder comes from: a run reloads it when one changes. A pretrain folder that
    /// adapted a published encoder gives that encoder (its config and weights), which runs with
    /// its own transform and pooling as the published one does.
    static func files(_ choice: EncoderChoice, _ context: StageContext) throws -> [String] {
        switch choice {
        case let .published(_, weights): return [weights]
        case .checkpoint:
            guard let checkpoint = context.inputs["checkpoint"]?.first else {
                throw StageError.invalid("no encoder: give the checkpoint input (an SD-MAE checkpoint) or --encoder NAME --weights FILE")
            }
            let adapted = [file(checkpoint, named: RunFiles.adaptedEncoderConfig), file(checkpoint, named: RunFiles.adaptedEncoder)]
            if adapted[0] != checkpoint, adapted.allSatisfy(FileManager.default.fileExists) { return adapted }
            return [file(checkpoint, named: RunFiles.finalModel)]
        }
    }

    public static func load(_ choice: EncoderChoice, files: [String], precision: Precision) throws -> any PatchEncoder {
        let encoder: any PatchEncoder
        switch choice {
        case let .published(preset, weights):
            encoder = try EncoderPresets.load(preset, weights: weights)
        case .checkpoint where files.count == 2:
            let adapted = try EncoderPresets.load(try EncoderPresets.resolve(files[0]), weights: files[1])
            adapted.name = "adapted"
            encoder = adapted
        case .checkpoint:
            encoder = try SDMAEModel.load(path: files[0])
        }
        encoder.precision = precision
        return encoder
    }

    /// What to say, once, when a slide's tiles are not what the encoder was made for: a resize
    /// of 256 → 224 is the published recipe; a larger shrink or any enlargement changes what
    /// the features see, as does another resolution than the 0.5 µm/px TRIDENT tiles at.
    static func tileNotice(_ encoder: any PatchEncoder, tiling: TilingSummary) -> String? {
        guard let model = encoder as? VisionTransformer else { return nil }
        let tile = tiling.patchSize, expected = model.tileSize, input = model.config.transform.resize
        var notes: [String] = []
        if tile < input {
            notes.append("warning: \(tile)-px tiles are enlarged to \(input) px for \(model.name) (made for \(expected)-px tiles)")
        } else if Double(tile) > 1.5 * Double(max(expected, input)) {
            notes.append("warning: \(tile)-px tiles are shrunk to \(input) px for \(model.name), which was made for \(expected)-px tiles: "
                         + "fine detail is lost; tile with --size \(expected)")
        } else if tile != expected {
            notes.append("note: \(tile)-px tiles are resized to \(input) px for \(model.name) (its recipe tiles at \(expected) px)")
        }
        if let mpp = tiling.outputMicronsPerPixel ?? tiling.micronsPerPixel, abs(mpp / 0.5 - 1) > 0.15 {
            notes.append("warning: tiles at \(String(format: "%.2f", mpp)) µm/px; \(model.name) was made for 20× (0.5 µm/px): tile with --mpp 0.5")
        }
        return notes.isEmpty ? nil : notes.joined(separator: "\n")
    }
}

/// Prints each distinct notice once per stage run (the notices of all slides are usually the same).
final class OnceNotices: @unchecked Sendable {
    private let lock = NSLock()
    private var said: Set<String> = []

    func say(_ notice: String?) {
        guard let notice else { return }
        lock.lock()
        defer { lock.unlock() }
        if said.insert(notice).inserted { printError(notice) }
    }
}

/// The arithmetic a `precision` option asks for: auto is bf16 where the CPU multiplies bfloat16
/// natively; bf16 asked for on a CPU without falls back to fp32 with a one-line notice.
public enum PrecisionChoice: String, CaseIterable, Sendable {
    case auto, fp32, bf16

    public var resolved: Precision {
        switch self {
        case .fp32: return .fp32
        case .bf16:
            let (precision, notice) = Precision.resolve(.bf16)
            if let notice { printError(notice) }
            return precision
        case .auto: return Precision.bf16Available ? .bf16 : .fp32
        }
    }
}
