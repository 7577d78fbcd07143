import Foundation

/// Watches the teacher for the two ways self-distillation collapses: every image on the same
/// few prototypes, or a uniform teacher. Either way L_sd stops carrying information about the
/// image, and the encoder learns nothing from it.
public struct CollapseWatch: Sendable {
    public enum Kind: String, Sendable {
        case none, dominant, uniform
    }

    public let prototypes: Int
    /// Steps before which nothing is flagged (the warm-up, when entropies move fast).
    public let after: Int
    public let active: Bool

    public init(prototypes: Int, after: Int, active: Bool) {
        self.prototypes = prototypes
        self.after = after
        self.active = active
    }

    public func kind(_ losses: StepLosses, step: Int) -> Kind {
        guard active, step > after else { return .none }
        // Fewer than about four prototypes in use across the batch (e^H < 4).
        if losses.prototypeEntropy < log(4.0) { return .dominant }
        if losses.teacherEntropy > 0.97 * log(Double(prototypes)) { return .uniform }
        return .none
    }

    public func check(_ losses: StepLosses, step: Int) -> (kind: Kind, message: String)? {
        switch kind(losses, step: step) {
        case .none:
            return nil
        case .dominant:
            return (.dominant, String(format: "self-distillation collapse: the batch's teacher mass sits on about %.1f of %d prototypes",
                                      exp(losses.prototypeEntropy), prototypes) + "; L_sd no longer describes the image")
        case .uniform:
            return (.uniform, String(format: "self-distillation collapse: the teacher is uniform (entropy %.2f of ln K = %.2f)",
                                     losses.teacherEntropy, log(Double(prototypes))) + "; L_sd no longer describes the image")
        }
    }
}
