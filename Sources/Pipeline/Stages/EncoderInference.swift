import Console
import NN
import SDMAE

/// The options of the stages that run the SD-MAE encoder without training it (features,
/// predict; `wsi embed` takes the same precision), declared once.
public enum EncoderInference {
    static let batch = ParameterSpec("batch", .int(1...4096), default: .int(64), help: "encoder batch size")
    public static let precision = ParameterSpec("precision", .choice(["auto"] + Precision.allCases.map(\.rawValue)), default: .string("auto"),
                                                help: "encoder matrix products: auto is bf16 where the CPU has AVX-512 BF16 (features within 1e-5 cosine of fp32), else fp32")
    static let parameters = [batch, precision]

    public static func precision(_ p: StageParameters) -> Precision {
        chosenPrecision(p.string("precision"))
    }

    /// The encoder of a checkpoint file, computing in `precision`.
    static func load(_ checkpoint: String, precision: Precision) throws -> SDMAEModel {
        let model = try SDMAEModel.load(path: checkpoint)
        model.precision = precision
        return model
    }
}

/// The arithmetic a `precision` option's value (auto, bf16, fp32) runs here: auto is bf16 where
/// the CPU multiplies bfloat16 natively; bf16 asked for on a CPU without falls back to fp32 with a
/// one-line notice.
func chosenPrecision(_ name: String?) -> Precision {
    switch name {
    case "fp32": return .fp32
    case "bf16":
        let (precision, notice) = Precision.resolve(.bf16)
        if let notice { printError(notice) }
        return precision
    default: return Precision.bf16Available ? .bf16 : .fp32
    }
}
