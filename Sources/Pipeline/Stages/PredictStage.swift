import Foundation
import NN
import Predict
import SDMAE
import Tiling
import Results

/// Per-tile class probabilities of one slide.
struct PredictStage: Stage {
    static let kind = "predict"
    static let scope = StageScope.perSlide
    static let summary = "per-tile class probabilities (CSV + HDF5)"
    static let parameters = EncoderInference.parameters
    static let inputs = [
        InputSpec("tiles", perSlide: true, reads: ["tile"], help: "the tile stage's folder"),
        EncoderInference.checkpointInput,
        InputSpec("classifier", reads: ["train-classifier"], help: "the train-classifier stage's folder or a classifier file"),
    ]
    static let outputs = [
        OutputSpec(PredictionFiles.csv, "x, y, a probability per class, the predicted class"),
        OutputSpec(PredictionFiles.hdf5, "coords and probabilities [N, classes], class names as an attribute"),
        OutputSpec(PredictionFiles.summary, "tiles, classes, mean probabilities, speed"),
    ]

    let batch: Int
    let precision: Precision
    let choice: EncoderChoice
    private let cache = LoadedOnce<SlidePredictor>()
    private let notices = OnceNotices()

    init(_ p: StageParameters) throws {
        batch = p[EncoderInference.batch]
        precision = p[EncoderInference.precision].resolved
        choice = try EncoderInference.choice(p)
    }

    func run(_ context: StageContext) throws -> String {
        let files = try EncoderInference.files(choice, context)
        let classifier = file(try context.input("classifier")[0], named: TrainClassifierStage.classifierName)
        let (choice, precision) = (choice, precision)
        return try cache.with(files: files + [classifier], load: {
            try SlidePredictor(encoder: try EncoderInference.load(choice, files: files, precision: precision),
                               probe: try LinearProbe.read(path: classifier), classifierPath: classifier)
        }) { predictor in
            notices.say(EncoderInference.tileNotice(predictor.encoder, tiling: try TilingFolder(try context.input("tiles")[0]).summary()))
            predictor.batchSize = batch
            predictor.showProgress = context.showProgress
            let summary = try predictor.run(slidePath: try context.requireSlide(), tileDirectory: try context.input("tiles")[0],
                                            outputDirectory: context.output)
            return String(format: "%d tiles, %.1f patches/s", summary.tiles, summary.patchesPerSecond)
        }
    }
}
