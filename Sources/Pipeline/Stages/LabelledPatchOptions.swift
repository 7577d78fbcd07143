import Foundation
import Predict

/// Options of the stages that learn from labelled patches (evaluate, train-classifier), declared
/// once: where the patches are, how they are grouped by source, crops, and the linear probe.
enum LabelledPatchOptions {
    static let labelled = Option<String>(required: "labelled", .path, placeholder: "DIR",
                                         help: "folder with one sub-folder of patches (PNG, JPEG, TIFF or shards) per class")
    static let groupPattern = Option<String?>("group_pattern", .text, placeholder: "REGEX",
                                              help: "source of a patch from its file name (first capture group, else the match), e.g. 'CRC-Prim-HE-[0-9_]+' for Kather 2016")
    static let groups = Option<String?>("groups", .path, placeholder: "CSV", help: "table 'file,group' naming each patch's source (slide, patient, image)")
    static let crops = Option<Bool>("crops", default: true, help: "cut pictures larger than the model input into input-sized crops")
    static let epochs = Option<Int>("epochs", 1...100_000, default: LinearProbe.TrainingSettings().epochs, help: "linear probe optimiser steps")
    static let learningRate = Option<Double>("lr", 1e-6...10, default: Double(LinearProbe.TrainingSettings().learningRate),
                                             help: "linear probe learning rate")
    static let seed = Option<Int>("seed", 0...Int(Int32.max), default: 0, help: "splits, probe initialisation and random networks")
    /// All but `labelled`, which train-classifier may do without.
    static let sharedParameters = [groupPattern.spec, groups.spec, crops.spec, epochs.spec, learningRate.spec, seed.spec]

    static func probe(_ p: StageParameters) -> LinearProbe.TrainingSettings {
        var settings = LinearProbe.TrainingSettings()
        settings.epochs = p[epochs]
        settings.learningRate = Float(p[learningRate])
        settings.seed = UInt64(p[seed])
        return settings
    }

    /// Each file its own source unless a pattern or a table says which files share one.
    static func groupRule(_ p: StageParameters) throws -> GroupRule {
        switch (p[groupPattern], p[groups]) {
        case (nil, nil): return .perFile
        case let (pattern?, nil):
            guard (try? NSRegularExpression(pattern: pattern)) != nil else { throw StageError.invalid("group_pattern '\(pattern)' is not a regular expression") }
            return .pattern(pattern)
        case let (nil, table?): return .table(table)
        default: throw StageError.invalid("give group_pattern or groups, not both")
        }
    }
}
