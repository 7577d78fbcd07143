import Foundation
import Predict
import SDMAE

/// Per-tile class probabilities of one slide (see `wsi predict`).
struct PredictStage: Stage {
    static let kind = "predict"
    static let scope = StageScope.perSlide
    static let summary = "per-tile class probabilities (CSV + HDF5)"
    static let parameters = [ParameterSpec("batch", .int, default: .int(64), help: "encoder batch size")]
    static let inputs = [
        InputSpec("tiles", help: "the tile stage"),
        InputSpec("checkpoint", help: "pretrain stage or an SD-MAE checkpoint file"),
        InputSpec("classifier", help: "train-classifier stage or a classifier file"),
    ]

    let batch: Int

    init(_ p: StageParameters) throws {
        batch = p.int("batch") ?? 64
        guard batch >= 1 else { throw StageError.failed("batch must be at least 1") }
    }

    func run(_ context: StageContext) throws {
        let model = try SDMAEModel.load(path: file(try context.input("checkpoint")[0], named: RunFiles.finalModel))
        let classifierPath = file(try context.input("classifier")[0], named: TrainClassifierStage.classifierName)
        var predictor = try SlidePredictor(model: model, probe: try LinearProbe.read(path: classifierPath), classifierPath: classifierPath)
        predictor.batchSize = batch
        predictor.showProgress = context.showProgress
        try predictor.run(slidePath: context.slide!, tileDirectory: try context.input("tiles")[0], outputDirectory: context.output)
    }
}
