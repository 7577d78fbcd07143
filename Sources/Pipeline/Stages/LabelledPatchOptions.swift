import Foundation
import Predict

/// Options of the stages that learn from labelled patches (evaluate, train-classifier), declared
/// once: where the patches are, how they are grouped by source, crops, and the linear probe.
enum LabelledPatchOptions {
    static let parameters = [
        ParameterSpec("labelled", .path, required: true, placeholder: "DIR",
                      help: "folder with one sub-folder of patches (PNG, JPEG, TIFF or shards) per class"),
        ParameterSpec("group_pattern", .string, placeholder: "REGEX",
                      help: "source of a patch from its file name (first capture group, else the match), e.g. 'CRC-Prim-HE-[0-9_]+' for Kather 2016"),
        ParameterSpec("groups", .path, placeholder: "CSV", help: "table 'file,group' naming each patch's source (slide, patient, image)"),
        ParameterSpec("crops", .bool, default: .bool(true), help: "cut pictures larger than the model input into input-sized crops"),
        ParameterSpec("epochs", .int(1...100_000), default: .int(LinearProbe.TrainingSettings().epochs), help: "linear probe optimiser steps"),
        ParameterSpec("lr", .double(1e-6...10), default: .double(Double(LinearProbe.TrainingSettings().learningRate)), help: "linear probe learning rate"),
        ParameterSpec("seed", .int(0...Int(Int32.max)), default: .int(0), help: "splits, probe initialisation and random networks"),
    ]

    static func probe(_ p: StageParameters) -> LinearProbe.TrainingSettings {
        var settings = LinearProbe.TrainingSettings()
        settings.epochs = p.int("epochs") ?? settings.epochs
        settings.learningRate = Float(p.double("lr") ?? Double(settings.learningRate))
        settings.seed = UInt64(p.int("seed") ?? 0)
        return settings
    }

    /// Each file its own source unless a pattern or a table says which files share one.
    static func groupRule(_ p: StageParameters) throws -> GroupRule {
        switch (p.string("group_pattern"), p.string("groups")) {
        case (nil, nil): return .perFile
        case let (pattern?, nil):
            guard (try? NSRegularExpression(pattern: pattern)) != nil else { throw StageError.invalid("group_pattern '\(pattern)' is not a regular expression") }
            return .pattern(pattern)
        case let (nil, table?): return .table(table)
        default: throw StageError.invalid("give group_pattern or groups, not both")
        }
    }
}
