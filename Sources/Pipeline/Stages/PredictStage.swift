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
    private let cache = PredictorCache()

    init(_ p: StageParameters) throws {
        batch = p.int("batch") ?? 64
        guard batch >= 1 else { throw StageError.failed("batch must be at least 1") }
    }

    func run(_ context: StageContext) throws {
        let checkpoint = file(try context.input("checkpoint")[0], named: RunFiles.finalModel)
        let classifier = file(try context.input("classifier")[0], named: TrainClassifierStage.classifierName)
        try cache.withPredictor(checkpoint: checkpoint, classifier: classifier) { predictor in
            predictor.batchSize = batch
            predictor.showProgress = context.showProgress
            try predictor.run(slidePath: context.slide!, tileDirectory: try context.input("tiles")[0], outputDirectory: context.output)
        }
    }
}

/// One loaded encoder and classifier for all the slides of a run: loading them and warming the
/// activation buffers per slide cost more than predicting a small slide. The model's buffers are
/// not shareable, so slides take turns.
final class PredictorCache: @unchecked Sendable {
    private let lock = NSLock()
    private var key: String?
    private var predictor: SlidePredictor?

    func withPredictor(checkpoint: String, classifier: String, _ body: (inout SlidePredictor) throws -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        let current = "\(checkpoint):\(modificationTime(checkpoint))|\(classifier):\(modificationTime(classifier))"
        var loaded: SlidePredictor
        if key == current, let cached = predictor {
            loaded = cached
        } else {
            loaded = try SlidePredictor(model: try SDMAEModel.load(path: checkpoint), probe: try LinearProbe.read(path: classifier),
                                        classifierPath: classifier)
            key = current
        }
        try body(&loaded)
        predictor = loaded
    }
}
