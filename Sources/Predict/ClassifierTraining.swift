import ViT
import Foundation
import SDMAE
import Storage
import Results

/// What `train-classifier` produces: the probe and its held-out reports.
public struct ClassifierTrainingResult: Sendable {
    public var probe: LinearProbe
    public var linear: ClassificationReport
    public var knn: ClassificationReport
    public var trainingSamples: Int
    /// The same linear probe, split and patches on a randomly initialised encoder and on the
    /// colour histogram: what the checkpoint's features must beat.
    public var randomEncoder: ClassificationReport
    public var colourHistogram: ClassificationReport

    /// The reports as the JSON saved beside the classifier.
    public func reportJSON() throws -> Data {
        return try JSONFile.encode(ClassifierMetrics(trainingSamples: trainingSamples, linearProbe: linear, knn20Cosine: knn,
                                                     randomEncoderProbe: randomEncoder, colourHistogramProbe: colourHistogram))
    }
}

/// The held-out evaluation saved beside a classifier (`metrics.json`), as written and as read
/// (the baselines are absent from files written before they were measured).
public struct ClassifierMetrics: Codable, Sendable {
    public var trainingSamples: Int
    public var linearProbe: ClassificationReport
    public var knn20Cosine: ClassificationReport
    public var randomEncoderProbe: ClassificationReport?
    public var colourHistogramProbe: ClassificationReport?
}

public enum ClassifierTraining {
    /// Frozen encoder features, a held-out split by source (`groups`), the linear probe on the rest, a
    /// kNN (k = 20, cosine) evaluation on the same split, and the same probe on a randomly
    /// initialised encoder and on the colour histogram as baselines.
    /// `crops`: pictures larger than the model input are cut into input-sized crops at their own
    /// resolution (the scale tiles are cut at) rather than shrunk whole.
    public static func run(encoder: any PatchEncoder, patches: LabelledPatches, groups pictureGroups: [String], crops: Bool,
                           validationFraction: Double, seed: UInt64,
                           settings: LinearProbe.TrainingSettings, showProgress: Bool) throws -> ClassifierTrainingResult {
        let (dataset, labels, groups) = crops
            ? try EvaluationCrops.expand(patches, groups: pictureGroups, size: encoder.tileSize)
            : (patches.dataset, patches.labels, pictureGroups)
        func encoded(by encoder: any PatchEncoder) throws -> [Float] {
            var extractor = FeatureExtractor(encoder: encoder)
            extractor.showProgress = showProgress
            return try extractor.run(dataset)
        }
        // Whole sources are held out: about `validationFraction` of each class's groups.
        let folds = GroupedFolds.assign(groups: groups, labels: labels, folds: max(2, Int((1 / validationFraction).rounded())), seed: seed)
        let test = labels.indices.filter { folds[$0] == 0 }, train = labels.indices.filter { folds[$0] != 0 }
        let trainLabels = train.map { labels[$0] }, testLabels = test.map { labels[$0] }
        let c = patches.classes.count

        /// The probe trained on the training rows of `features` and its held-out report.
        func probeOn(_ features: [Float], width: Int) throws -> (LinearProbe, ClassificationReport, train: [Float], test: [Float]) {
            func rows(_ indices: [Int]) -> [Float] { indices.flatMap { features[($0 * width)..<(($0 + 1) * width)] } }
            let trainFeatures = rows(train), testFeatures = rows(test)
            let probe = try LinearProbe.train(features: trainFeatures, labels: trainLabels, classes: patches.classes, width: width, settings: settings)
            let p = probe.probabilities(testFeatures)
            let predicted = (0..<test.count).map { i in (0..<c).max { p[i * c + $0] < p[i * c + $1] } ?? 0 }
            return (probe, ClassificationReport(truth: testLabels, predicted: predicted, classes: patches.classes), trainFeatures, testFeatures)
        }
        let width = encoder.featureWidth
        let (probe, linear, trainFeatures, testFeatures) = try probeOn(encoded(by: encoder), width: width)
        let knn = Evaluation.knn(trainFeatures: trainFeatures, trainLabels: trainLabels, testFeatures: testFeatures, width: width,
                                 classes: c, k: 20)
        let randomEncoder = try probeOn(encoded(by: encoder.randomlyInitialised(seed: seed)), width: width).1
        let colourHistogram = try probeOn(ColourHistogram.features(of: dataset), width: ColourHistogram.width).1
        return ClassifierTrainingResult(probe: probe, linear: linear, knn: ClassificationReport(truth: testLabels, predicted: knn, classes: patches.classes),
                                        trainingSamples: train.count, randomEncoder: randomEncoder, colourHistogram: colourHistogram)
    }
}
