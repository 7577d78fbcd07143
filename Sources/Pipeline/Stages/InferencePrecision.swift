import Console
import NN

/// The `precision` option of the stages that run the encoder without training it, declared once.
public enum InferencePrecision {
    public static let parameter = ParameterSpec("precision", .choice(["auto"] + Precision.allCases.map(\.rawValue)), default: .string("auto"),
                                         help: "encoder matrix products: auto is bf16 where the CPU has AVX-512 BF16 (features within 1e-5 cosine of fp32), else fp32")

    public static func resolve(_ p: StageParameters) -> Precision {
        switch p.string("precision") {
        case "fp32": return .fp32
        case "bf16":
            let (precision, notice) = Precision.resolve(.bf16)
            if let notice { printError(notice) }
            return precision
        default: return Precision.bf16Available ? .bf16 : .fp32
        }
    }
}
