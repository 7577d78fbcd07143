import ViT
import Foundation
import Imaging
import NN
import SDMAE
import Storage
import Tiling
import Results

/// Where each labelled patch came from. Crops and tiles of one source image (or one slide) must
/// never straddle train and test, or near-copies of a test patch sit in the training set.
public enum GroupRule: Sendable, Equatable {
    /// A regular expression on the file name: its first capture group, else the whole match.
    case pattern(String)
    /// A CSV with columns `file,group` (file names, or paths relative to the labelled folder).
    case table(String)
    /// Every file is its own source; patches from one shard share their slide.
    case perFile
}

extension LabelledPatches {
    /// One group name per patch, by `rule`; a file the rule does not cover is an error naming it.
    public func groups(by rule: GroupRule) throws -> [String] {
        var table: [String: String] = [:]
        if case let .table(path) = rule {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ClassifierError.notLabelled(path: path, reason: "cannot read the groups table")
            }
            for (number, line) in text.split(whereSeparator: \.isNewline).enumerated() {
                let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard fields.count >= 2 else { throw ClassifierError.notLabelled(path: path, reason: "line \(number + 1) is not 'file,group'") }
                if number == 0, fields[0].lowercased() == "file" { continue }
                table[fields[0]] = fields[1]
            }
        }
        let expression: NSRegularExpression?
        if case let .pattern(pattern) = rule {
            do { expression = try NSRegularExpression(pattern: pattern) } catch {
                throw ClassifierError.notLabelled(path: root, reason: "group pattern '\(pattern)' is not a regular expression")
            }
        } else {
            expression = nil
        }
        return try dataset.sources.map { source in
            let file = Self.file(of: source)
            let name = URL(fileURLWithPath: file).lastPathComponent
            switch rule {
            case .perFile:
                return file
            case .table:
                let relative = file.hasPrefix(root + "/") ? String(file.dropFirst(root.count + 1)) : file
                guard let group = table[relative] ?? table[name] else {
                    throw ClassifierError.notLabelled(path: file, reason: "not listed in the groups table")
                }
                return group
            case let .pattern(pattern):
                let range = NSRange(name.startIndex..., in: name)
                guard let match = expression?.firstMatch(in: name, range: range) else {
                    throw ClassifierError.notLabelled(path: file, reason: "the name does not match the group pattern '\(pattern)'")
                }
                let captured = match.numberOfRanges > 1 && match.range(at: 1).location != NSNotFound ? match.range(at: 1) : match.range
                return Range(captured, in: name).map { String(name[$0]) } ?? name
            }
        }
    }

    private static func file(of source: PatchDataset.Source) -> String {
        switch source {
        case let .file(path): return path
        case let .shard(shard, _): return shard.path
        case let .region(slide, _, _, _, _, _): return slide.path
        case let .crop(inner, _, _, _): return file(of: inner)
        }
    }
}

/// Folds that keep every group whole, with each class's groups spread over the folds.
public enum GroupedFolds {
    /// The fold of every sample, 0..<folds. Groups take their most common label; within a label
    /// they are shuffled by `seed` and dealt round the folds, continuing where the last label
    /// stopped so the folds stay even.
    public static func assign(groups: [String], labels: [Int], folds: Int, seed: UInt64) -> [Int] {
        var labelsOfGroup: [String: [Int: Int]] = [:]
        for (group, label) in zip(groups, labels) { labelsOfGroup[group, default: [:]][label, default: 0] += 1 }
        let majority = labelsOfGroup.mapValues { counts in counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?.key ?? 0 }
        var generator = SeededGenerator(seed: seed)
        var foldOfGroup: [String: Int] = [:]
        var next = 0
        for label in Set(majority.values).sorted() {
            var members = majority.filter { $0.value == label }.map(\.key).sorted()
            for i in stride(from: members.count - 1, to: 0, by: -1) { members.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
            for group in members {
                foldOfGroup[group] = next % folds
                next += 1
            }
        }
        return groups.map { foldOfGroup[$0] ?? 0 }
    }
}

/// The crops an evaluation takes from each labelled picture: squares of the model's input size
/// at the picture's own resolution, spread evenly to cover it (150 px pictures give 2×2 crops of
/// 96). Pictures no larger than the input are used whole.
public enum EvaluationCrops {
    public static func expand(_ patches: LabelledPatches, groups: [String], size: Int) throws -> (dataset: PatchDataset, labels: [Int], groups: [String]) {
        var sources: [PatchDataset.Source] = [], labels: [Int] = [], cropGroups: [String] = []
        for (index, source) in patches.dataset.sources.enumerated() {
            let image = try patches.dataset.image(index)
            let columns = positions(image.width, size), rows = positions(image.height, size)
            if columns.isEmpty || rows.isEmpty {
                sources.append(source)
                labels.append(patches.labels[index])
                cropGroups.append(groups[index])
                continue
            }
            for y in rows {
                for x in columns {
                    sources.append(.crop(source, x: x, y: y, size: size))
                    labels.append(patches.labels[index])
                    cropGroups.append(groups[index])
                }
            }
        }
        return (PatchDataset(sources: sources), labels, cropGroups)
    }

    static func positions(_ extent: Int, _ size: Int) -> [Int] {
        guard extent > size else { return [] }
        let count = (extent + size - 1) / size
        return (0..<count).map { Int((Double($0) * Double(extent - size) / Double(count - 1)).rounded()) }
    }
}

/// A 54-number colour description of a patch: 18-bin histograms of hue, saturation and value.
/// The baseline any learned feature must beat: on H&E, colour alone separates some classes.
public enum ColourHistogram {
    public static let width = 54

    public static func features(_ image: RGBImage) -> [Float] {
        var histogram = [Float](repeating: 0, count: width)
        let n = image.width * image.height
        for i in 0..<n {
            let r = Float(image.pixels[i * 3]) / 255, g = Float(image.pixels[i * 3 + 1]) / 255, b = Float(image.pixels[i * 3 + 2]) / 255
            let high = max(r, g, b), low = min(r, g, b), chroma = high - low
            var hue: Float = 0
            if chroma > 0 {
                if high == r { hue = ((g - b) / chroma).truncatingRemainder(dividingBy: 6) }
                else if high == g { hue = (b - r) / chroma + 2 }
                else { hue = (r - g) / chroma + 4 }
                hue = (hue < 0 ? hue + 6 : hue) / 6
            }
            let saturation = high > 0 ? chroma / high : 0
            for (channel, value) in [hue, saturation, high].enumerated() {
                histogram[channel * 18 + min(17, Int(value * 18))] += 1 / Float(max(n, 1))
            }
        }
        return histogram
    }

    /// Every patch's histogram, [count, width].
    public static func features(of dataset: PatchDataset) throws -> [Float] {
        var histograms: [Float] = []
        histograms.reserveCapacity(dataset.count * width)
        for i in 0..<dataset.count { histograms += try features(dataset.image(i)) }
        return histograms
    }
}

/// One feature set's cross-validated results.
public struct FeatureEvaluation: Codable, Sendable {
    public var features: String
    public var width: Int
    public var linear: ClassificationReport
    public var knn: ClassificationReport
    /// Balanced accuracy of each fold's held-out samples.
    public var linearFolds: [Double]
    public var knnFolds: [Double]
}

/// What `wsi evaluate` writes (evaluation.json): the checkpoint's features, a randomly
/// initialised network of the same configuration and the colour histogram, on the same folds.
public struct EvaluationReport: Codable, Sendable {
    public var classes: [String]
    public var samples: Int
    public var pictures: Int
    public var groups: Int
    public var folds: Int
    public var knnK: Int
    public var results: [FeatureEvaluation]

    public var text: String {
        var lines = [String(format: "%d samples (crops of %d pictures) from %d sources, %d classes, %d-fold cross-validation grouped by source",
                            samples, pictures, groups, classes.count, folds),
                     "features             kNN(k=\(knnK)) bal.acc  macro-F1   linear bal.acc  macro-F1"]
        for result in results {
            func spread(_ values: [Double]) -> String {
                let mean = values.reduce(0, +) / Double(max(values.count, 1))
                let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(values.count - 1, 1))).squareRoot()
                return String(format: "±%.2f", sd)
            }
            lines.append(result.features.padding(toLength: 20, withPad: " ", startingAt: 0)
                         + String(format: " %.3f %@       %.3f      %.3f %@       %.3f", result.knn.balancedAccuracy, spread(result.knnFolds),
                                  result.knn.macroF1, result.linear.balancedAccuracy, spread(result.linearFolds), result.linear.macroF1))
        }
        lines.append("(± is the standard deviation over folds; per-class recall and confusion matrices in the JSON)")
        return lines.joined(separator: "\n")
    }
}

public struct GroupedEvaluation: Sendable {
    public var folds = 5
    public var knnK = 5
    public var probe = LinearProbe.TrainingSettings()
    public var seed: UInt64 = 0
    public var crops = true
    public var showProgress = true

    public init() {}

    /// Cross-validates linear probe and kNN on `encoder`'s features, `baseline`'s (the weights an
    /// adapted encoder started from), a fresh encoder of the same architecture, and the colour
    /// histogram.
    public func run(encoder: any PatchEncoder, baseline: (any PatchEncoder)? = nil, patches: LabelledPatches,
                    groups rule: GroupRule) throws -> EvaluationReport {
        let pictureGroups = try patches.groups(by: rule)
        let size = encoder.tileSize
        let (dataset, labels, groups) = crops ? try EvaluationCrops.expand(patches, groups: pictureGroups, size: size)
            : (patches.dataset, patches.labels, pictureGroups)
        let distinct = Set(groups).count
        guard distinct >= 2 else {
            throw ClassifierError.notLabelled(path: patches.root, reason: "all patches come from one source: nothing to hold out")
        }
        let k = min(folds, distinct)
        let fold = GroupedFolds.assign(groups: groups, labels: labels, folds: k, seed: seed)

        func features(_ encoder: any PatchEncoder) throws -> [Float] {
            var extractor = FeatureExtractor(encoder: encoder)
            extractor.showProgress = showProgress
            return try extractor.run(dataset)
        }
        let width = encoder.featureWidth
        var sets = [("checkpoint", try features(encoder), width)]
        if let baseline { sets.append(("starting weights", try features(baseline), baseline.featureWidth)) }
        sets.append(("random init", try features(encoder.randomlyInitialised(seed: seed)), width))
        sets.append(("colour histogram", try ColourHistogram.features(of: dataset), ColourHistogram.width))
        let results = try sets.map { name, features, width in
            try crossValidate(name: name, features: features, width: width, labels: labels, classes: patches.classes, fold: fold, folds: k)
        }
        return EvaluationReport(classes: patches.classes, samples: dataset.count, pictures: patches.dataset.count, groups: distinct,
                                folds: k, knnK: knnK, results: results)
    }

    func crossValidate(name: String, features: [Float], width: Int, labels: [Int], classes: [String], fold: [Int], folds: Int) throws -> FeatureEvaluation {
        var linearPredicted = [Int](repeating: 0, count: labels.count), knnPredicted = linearPredicted
        var linearFolds: [Double] = [], knnFolds: [Double] = []
        for f in 0..<folds {
            let test = labels.indices.filter { fold[$0] == f }, train = labels.indices.filter { fold[$0] != f }
            guard !test.isEmpty, !train.isEmpty else { continue }
            func rows(_ indices: [Int]) -> [Float] { indices.flatMap { features[($0 * width)..<(($0 + 1) * width)] } }
            let trainFeatures = rows(train), testFeatures = rows(test)
            let trainLabels = train.map { labels[$0] }, testLabels = test.map { labels[$0] }
            var settings = probe
            settings.seed = seed &+ UInt64(f)
            let model = try LinearProbe.train(features: trainFeatures, labels: trainLabels, classes: classes, width: width, settings: settings)
            let p = model.probabilities(testFeatures), c = classes.count
            let linear = (0..<test.count).map { i in (0..<c).max { p[i * c + $0] < p[i * c + $1] } ?? 0 }
            let knn = Evaluation.knn(trainFeatures: trainFeatures, trainLabels: trainLabels, testFeatures: testFeatures, width: width,
                                     classes: c, k: knnK)
            for (slot, index) in test.enumerated() {
                linearPredicted[index] = linear[slot]
                knnPredicted[index] = knn[slot]
            }
            linearFolds.append(ClassificationReport(truth: testLabels, predicted: linear, classes: classes).balancedAccuracy)
            knnFolds.append(ClassificationReport(truth: testLabels, predicted: knn, classes: classes).balancedAccuracy)
        }
        return FeatureEvaluation(features: name, width: width,
                                 linear: ClassificationReport(truth: labels, predicted: linearPredicted, classes: classes),
                                 knn: ClassificationReport(truth: labels, predicted: knnPredicted, classes: classes),
                                 linearFolds: linearFolds, knnFolds: knnFolds)
    }
}
