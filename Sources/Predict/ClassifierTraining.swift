import Foundation
import SDMAE
import Storage

/// What `train-classifier` produces: the probe and its held-out reports.
public struct ClassifierTrainingResult: Sendable {
    public var probe: LinearProbe
    public var linear: ClassificationReport
    public var knn: ClassificationReport
    public var trainingSamples: Int

    /// Both reports as the JSON saved beside the classifier.
    public func reportJSON() throws -> Data {
        return try JSONFile.encode(ClassifierMetrics(trainingSamples: trainingSamples, linearProbe: linear, knn20Cosine: knn))
    }
}

/// The held-out evaluation saved beside a classifier (`metrics.json`), as written and as read.
public struct ClassifierMetrics: Codable, Sendable {
    public var trainingSamples: Int
    public var linearProbe: ClassificationReport
    public var knn20Cosine: ClassificationReport
}

public enum ClassifierTraining {
    /// Frozen encoder features, a stratified held-out split, the linear probe on the rest, and a
    /// kNN (k = 20, cosine) evaluation on the same split.
    public static func run(model: SDMAEModel, patches: LabelledPatches, validationFraction: Double, seed: UInt64,
                           settings: LinearProbe.TrainingSettings, showProgress: Bool) throws -> ClassifierTrainingResult {
        var extractor = FeatureExtractor(model: model)
        extractor.showProgress = showProgress
        let features = try extractor.run(patches.dataset)
        let width = model.config.width
        let (train, test) = Evaluation.stratifiedSplit(labels: patches.labels, classes: patches.classes.count,
                                                       fraction: validationFraction, seed: seed)
        func rows(_ indices: [Int]) -> [Float] { indices.flatMap { features[($0 * width)..<(($0 + 1) * width)] } }
        let trainFeatures = rows(train), testFeatures = rows(test)
        let trainLabels = train.map { patches.labels[$0] }, testLabels = test.map { patches.labels[$0] }
        let probe = LinearProbe.train(features: trainFeatures, labels: trainLabels, classes: patches.classes, width: width, settings: settings)
        let c = patches.classes.count
        let p = probe.probabilities(testFeatures)
        let predicted = (0..<test.count).map { i in (0..<c).max { p[i * c + $0] < p[i * c + $1] } ?? 0 }
        let knn = Evaluation.knn(trainFeatures: trainFeatures, trainLabels: trainLabels, testFeatures: testFeatures, width: width,
                                 classes: c, k: 20)
        return ClassifierTrainingResult(probe: probe, linear: ClassificationReport(truth: testLabels, predicted: predicted, classes: patches.classes),
                                        knn: ClassificationReport(truth: testLabels, predicted: knn, classes: patches.classes),
                                        trainingSamples: train.count)
    }
}
