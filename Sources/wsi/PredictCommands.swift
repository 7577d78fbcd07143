import Console
import Foundation
import Heatmap
import Predict
import SDMAE
import SlideIO
import Storage
import Tiling

enum TrainClassifierCommand: Command {
    static let name = "train-classifier"
    static let summary = "linear probe on frozen SD-MAE features of labelled patches"
    static let usage = """
    Usage: wsi train-classifier --checkpoint CKPT --data LABELLED_DIR --out clf.safetensors [options]

    LABELLED_DIR holds one sub-folder per class (ImageFolder convention) with PNG/JPEG patches or
    patch shards. Features are standardised; a softmax classifier is trained with AdamW on a
    stratified split, and the held-out accuracy, per-class precision/recall, confusion matrix and
    balanced accuracy are printed for it and for a kNN (k=20, cosine) vote, and saved as JSON
    next to the classifier (clf.metrics.json).
      --validation-fraction F   held-out share of every class (default 0.2)
      --epochs N                full-batch optimiser steps (default 300)
      --lr X                    learning rate (default 0.01)
      --seed N                  split and initialisation (default 0)
      --preset P                config of a checkpoint that records none
    """

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let model = try loadModel(&arguments)
        guard let data = try arguments.string("data") else { throw UsageError("--data LABELLED_DIR is required") }
        guard let out = try arguments.string("out") else { throw UsageError("--out PATH is required") }
        let fraction = try arguments.double("validation-fraction", range: 0.01...0.9) ?? 0.2
        var settings = LinearProbe.TrainingSettings()
        settings.epochs = try arguments.int("epochs", range: 1...100_000) ?? settings.epochs
        settings.learningRate = Float(try arguments.double("lr", range: 1e-6...10) ?? Double(settings.learningRate))
        settings.seed = UInt64(try arguments.int("seed", range: 0...Int.max) ?? 0)
        let quiet = arguments.flag("quiet")
        guard try arguments.positionals().isEmpty else { throw UsageError("unexpected arguments") }
        let patches = try LabelledPatches(root: data)
        print("\(patches.dataset.count) labelled patches in \(patches.classes.count) classes: \(patches.classes.joined(separator: ", "))")
        let result = try ClassifierTraining.run(model: model, patches: patches, validationFraction: fraction, seed: settings.seed,
                                                settings: settings, showProgress: !quiet)
        try result.probe.write(to: out, metadata: ["encoder_width": String(model.config.width)])
        let metricsPath = (out.hasSuffix(".safetensors") ? String(out.dropLast(".safetensors".count)) : out) + ".metrics.json"
        try AtomicFile.write(try result.reportJSON(), to: metricsPath)
        print("linear probe (\(result.trainingSamples) training patches)\n" + result.linear.text)
        print("kNN (k=20, cosine)\n" + result.knn.text)
        print("classifier → \(out), metrics → \(metricsPath)")
        return 0
    }
}

enum PredictCommand: Command {
    static let name = "predict"
    static let summary = "per-tile class probabilities for slides (CSV + HDF5)"
    static let usage = """
    Usage: wsi predict SLIDE_OR_DIR --tiles TILE_DIR --checkpoint CKPT --classifier clf.safetensors --out PRED_DIR [--batch 64]

    TILE_DIR is the output of 'wsi tile' (one folder per slide). Writes PRED_DIR/<slide>/
    predictions.csv, predictions.h5 (coords + probabilities, class names as an attribute) and
    predictions.json. A slide that fails is reported and the others go on.
    """

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let model = try loadModel(&arguments)
        guard let tiles = try arguments.string("tiles") else { throw UsageError("--tiles TILE_DIR is required") }
        guard let classifier = try arguments.string("classifier") else { throw UsageError("--classifier PATH is required") }
        guard let out = try arguments.string("out") else { throw UsageError("--out PRED_DIR is required") }
        let batch = try arguments.int("batch", range: 1...4096) ?? 64
        let quiet = arguments.flag("quiet")
        let inputs = try arguments.positionals()
        guard inputs.count == 1 else { throw UsageError("expected one SLIDE_OR_DIR") }
        var predictor = try SlidePredictor(model: model, probe: try LinearProbe.read(path: classifier), classifierPath: classifier)
        predictor.batchSize = batch
        predictor.showProgress = !quiet
        let slides = try SlideDiscovery.slides(at: inputs[0])
        var failures = 0
        for slide in slides {
            let stem = SlideDiscovery.stem(of: slide)
            do {
                let summary = try predictor.run(slidePath: slide, tileDirectory: tiles + "/" + stem, outputDirectory: out + "/" + stem)
                print(String(format: "%@: %d tiles, %.1f patches/s", slide, summary.tiles, summary.patchesPerSecond))
            } catch {
                failures += 1
                printError("failed: \(error)")
            }
        }
        print("\(slides.count - failures) of \(slides.count) slides predicted, \(failures) failed")
        return failures == 0 ? 0 : 1
    }
}

/// Folders of PRED_DIR that hold predictions, sorted.
func predictionFolders(_ root: String) throws -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else {
        throw StorageError.cannotOpen(path: root, reason: "not a directory")
    }
    return names.sorted().filter { FileManager.default.fileExists(atPath: root + "/" + $0 + "/" + PredictionFiles.hdf5) }
}

enum HeatmapCommand: Command {
    static let name = "heatmap"
    static let summary = "slide heatmap PNGs of per-tile scores over the thumbnail"
    static let usage = """
    Usage: wsi heatmap PRED_DIR --slides DIR --out DIR [--class NAME]... [--colormap viridis|jet|coolwarm]
                       [--alpha 0.5] [--smooth SIGMA] [--nearest] [--raw] [--thumbnail-size 1024]

    For each slide in PRED_DIR and each class (all by default), writes OUT/<slide>/heatmap-<class>.png
    (thumbnail, scores blended in, colour bar with class and range) and grid-<class>.npy (the score
    grid at tile resolution, NaN where there is no tissue); --raw also writes grid-<class>.png alone.
    """

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        guard let slidesRoot = try arguments.string("slides") else { throw UsageError("--slides DIR is required") }
        guard let out = try arguments.string("out") else { throw UsageError("--out DIR is required") }
        let chosen = try arguments.strings("class")
        var style = HeatmapStyle()
        style.colormap = try arguments.choice("colormap", Colormap.self) ?? style.colormap
        style.alpha = try arguments.double("alpha", range: 0...1) ?? style.alpha
        style.smoothingSigma = try arguments.double("smooth", range: 0...100) ?? 0
        style.interpolate = !arguments.flag("nearest")
        let raw = arguments.flag("raw")
        let thumbnailSize = try arguments.int("thumbnail-size", range: 64...16384) ?? 1024
        let inputs = try arguments.positionals()
        guard inputs.count == 1 else { throw UsageError("expected one PRED_DIR") }
        let slides = Dictionary(try SlideDiscovery.slides(at: slidesRoot).map { (SlideDiscovery.stem(of: $0), $0) }, uniquingKeysWith: { a, _ in a })
        let folders = try predictionFolders(inputs[0])
        guard !folders.isEmpty else { throw UsageError("no predictions (predictions.h5) under \(inputs[0])") }
        var failures = 0
        for stem in folders {
            do {
                let start = Date()
                let directory = inputs[0] + "/" + stem
                let predictions = try SlidePredictions(directory: directory)
                guard let slidePath = slides[stem] else {
                    throw SlideError.fileNotFound(path: "\(slidesRoot)/\(stem).* (slide for \(directory))")
                }
                let slide = try Slide(path: slidePath)
                try SlideHeatmaps.write(predictions, source: directory + "/" + PredictionFiles.hdf5,
                                        thumbnail: try slide.thumbnail(maxSize: thumbnailSize), classes: chosen, style: style,
                                        rawGrid: raw, to: out + "/" + stem)
                print(String(format: "%@: heatmaps in %.0f ms", stem, Date().timeIntervalSince(start) * 1000))
            } catch {
                failures += 1
                printError("failed: \(error)")
            }
        }
        return failures == 0 ? 0 : 1
    }
}

enum AggregateCommand: Command {
    static let name = "aggregate"
    static let summary = "slide-level labels from per-tile predictions"
    static let usage = """
    Usage: wsi aggregate PRED_DIR --out labels.csv [--rule mean|max|topk|majority|fraction] [--k 50] [--threshold 0.5]

    Per slide, a score per class by the rule (top-k mean, mean, max, share of tiles voting for the
    class, or share of tiles at or above the threshold); the label is the best-scoring class.
    Writes PRED_DIR/<slide>/label.json and the batch table labels.csv.
    """

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        guard let out = try arguments.string("out") else { throw UsageError("--out labels.csv is required") }
        let ruleName = try arguments.string("rule") ?? "topk"
        let k = try arguments.int("k", range: 1...1_000_000) ?? 50
        let threshold = try arguments.double("threshold", range: 0...1) ?? 0.5
        let inputs = try arguments.positionals()
        guard inputs.count == 1 else { throw UsageError("expected one PRED_DIR") }
        guard let rule = AggregationRule(name: ruleName, k: k, threshold: threshold) else {
            throw UsageError("--rule must be one of \(AggregationRule.names.joined(separator: ", ")), got '\(ruleName)'")
        }
        let folders = try predictionFolders(inputs[0])
        guard !folders.isEmpty else { throw UsageError("no predictions (predictions.h5) under \(inputs[0])") }
        var labels: [SlideLabel] = []
        var failures = 0
        for stem in folders {
            do {
                let predictions = try SlidePredictions(directory: inputs[0] + "/" + stem)
                let label = Aggregation.label(slide: stem, probabilities: predictions.probabilities, classes: predictions.classes, rule: rule)
                try AtomicFile.write(try Aggregation.json(label), to: inputs[0] + "/" + stem + "/label.json")
                labels.append(label)
                print("\(stem): \(label.label) (\(rule.name), \(label.tiles) tiles)")
            } catch {
                failures += 1
                printError("failed: \(error)")
            }
        }
        try AtomicFile.write(Data(Aggregation.table(labels).utf8), to: out)
        print("\(labels.count) slides labelled → \(out)" + (failures > 0 ? ", \(failures) failed" : ""))
        return failures == 0 ? 0 : 1
    }
}
