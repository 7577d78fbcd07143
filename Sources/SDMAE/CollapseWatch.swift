import Foundation

/// Watches the teacher for self-distillation collapse: the teacher gives every image the same
/// distribution (one-hot on one prototype, or any fixed mixture), or a uniform one. Either way
/// L_sd stops carrying information about the image and the encoder learns nothing from it. The
/// measure is the information the teacher's answer carries about the image within a batch,
/// I = H(mean P) − mean H(P), which is 0 exactly when every image gets the same P.
public struct CollapseWatch: Sendable {
    public enum Kind: String, Sendable {
        case none, constant, uniform
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

    /// Nats: below this the teacher's answers hardly differ between the images of a batch.
    public static let minimumInformation = 0.05

    public func kind(_ losses: StepLosses, step: Int) -> Kind {
        guard active, step > after else { return .none }
        if losses.teacherEntropy > 0.97 * log(Double(prototypes)) { return .uniform }
        if losses.prototypeEntropy - losses.teacherEntropy < Self.minimumInformation { return .constant }
        return .none
    }

    public func check(_ losses: StepLosses, step: Int) -> (kind: Kind, message: String)? {
        switch kind(losses, step: step) {
        case .none:
            return nil
        case .constant:
            return (.constant, String(format: "self-distillation collapse: the teacher gives every image the same distribution "
                                      + "(%.3f nats tell images apart; %.1f of %d prototypes in use)",
                                      losses.prototypeEntropy - losses.teacherEntropy, exp(losses.prototypeEntropy), prototypes)
                        + "; L_sd no longer describes the image")
        case .uniform:
            return (.uniform, String(format: "self-distillation collapse: the teacher is uniform (entropy %.2f of ln K = %.2f)",
                                     losses.teacherEntropy, log(Double(prototypes))) + "; L_sd no longer describes the image")
        }
    }
}
