import Foundation
import Predict
import SDMAE
import Storage

/// Linear probe on labelled patches (see `wsi train-classifier`).
struct TrainClassifierStage: Stage {
    static let kind = "train-classifier"
    static let scope = StageScope.global
    static let summary = "linear probe on frozen encoder features of labelled patches"
    static let parameters = [
        ParameterSpec("labelled", .path, required: true, help: "folder with one sub-folder of patches per class"),
        ParameterSpec("epochs", .int, default: .int(300), help: "optimiser steps"),
        ParameterSpec("lr", .double, default: .double(0.01), help: "learning rate"),
        ParameterSpec("validation_fraction", .double, default: .double(0.2), help: "held-out share per class"),
        ParameterSpec("seed", .int, default: .int(0), help: "split and initialisation seed"),
    ]
    static let inputs = [InputSpec("checkpoint", help: "pretrain stage or an SD-MAE checkpoint file")]
    static let classifierName = "classifier.safetensors"
    static let metricsName = "metrics.json"

    let parameters: StageParameters

    init(_ p: StageParameters) throws {
        guard let fraction = p.double("validation_fraction"), (0.01...0.9).contains(fraction) else {
            throw StageError.failed("validation_fraction must be in 0.01...0.9")
        }
        parameters = p
    }

    func run(_ context: StageContext) throws {
        let model = try SDMAEModel.load(path: file(try context.input("checkpoint")[0], named: RunFiles.finalModel))
        let patches = try LabelledPatches(root: parameters.string("labelled")!)
        var settings = LinearProbe.TrainingSettings()
        settings.epochs = parameters.int("epochs") ?? settings.epochs
        settings.learningRate = Float(parameters.double("lr") ?? Double(settings.learningRate))
        settings.seed = UInt64(max(0, parameters.int("seed") ?? 0))
        let result = try ClassifierTraining.run(model: model, patches: patches, validationFraction: parameters.double("validation_fraction")!,
                                                seed: settings.seed, settings: settings, showProgress: context.showProgress)
        try result.probe.write(to: context.output + "/" + Self.classifierName)
        try AtomicFile.write(try result.reportJSON(), to: context.output + "/" + Self.metricsName)
    }
}
