import Foundation
import Heatmap
import Imaging
import MIL
import Predict
import SlideIO
import Storage
import Results

/// Slide labels and per-tile attention from a trained attention-MIL model (or a fold ensemble).
struct PredictMILStage: Stage {
    static let kind = "predict-mil"
    static let scope = StageScope.global
    static let summary = "slide probabilities and labels from attention MIL, per-tile attention for heatmaps, top-k tile strips"
    static let topK = Option<Int>("top_k", 0...64, default: 6, help: "most and least attended tiles drawn per slide (0: none)")
    static let parameters = [topK.spec]
    static let inputs = [
        InputSpec("features", multiple: true, reads: ["features"], help: "the features stage's folder, or CLAM/TRIDENT feature files or folders of them"),
        InputSpec("model", reads: ["train-mil"], help: "the train-mil stage's folder (its fold models vote) or one MIL checkpoint"),
        InputSpec("slides", required: false, multiple: true,
                  help: "slide files or folders, for the top-k tiles and the slide size (a manifest's own slides are used otherwise)"),
    ]
    static let tableName = "labels.csv"
    static let outputs = [
        OutputSpec(tableName, "slide_id, tiles, p_<class>, predicted, in_sample_folds (the folds whose model trained on the slide)"),
        OutputSpec("<slide>/" + PredictionFiles.hdf5, "coords and the attention percentile as the one score 'attention' (what the heatmap stage draws), raw attention beside"),
        OutputSpec("<slide>/attention.csv", "x, y, raw attention, percentile within the slide"),
        OutputSpec("<slide>/" + PredictionFiles.summary, "the slide's probabilities and label"),
        OutputSpec("<slide>/" + TileStrip.fileName, "the top-k and bottom-k attended tiles with their percentiles (needs the slide)"),
    ]

    struct SlideVerdict: Codable {
        var slide: String
        var tiles: Int
        var classes: [String]
        var probabilities: [Double]
        var predicted: String
        var models: [String]
        /// Folds whose model trained on this slide (its training or validation set): their vote
        /// is not a held-out prediction. Nil or empty when none did.
        var inSampleFolds: [String]?
    }

    let topK: Int

    init(_ p: StageParameters) throws {
        topK = p[Self.topK]
    }

    /// One slide's outcome, kept until the cohort's attention range is known.
    private struct Predicted {
        var bag: FeatureBag
        var probabilities: [Float]
        var raw: [Float]
    }

    func run(_ context: StageContext) throws -> String {
        let ensemble = try MILEnsemble(path: context.input("model")[0])
        let bags = try FeatureBag.discover(context.input("features"))
        let slideFiles = try (context.inputs["slides"] ?? []).flatMap { try SlideDiscovery.slides(at: $0) } + context.slides
        let classes = ensemble.classNames
        var table = CSV.row(["slide_id", "tiles"] + classes.map { "p_" + $0 } + ["predicted", "in_sample_folds"])
        let trainedOn = Self.trainedOn(modelPaths: ensemble.paths)
        var predicted: [Predicted] = []
        for entry in bags {
            var bag = try FeatureBag.read(slide: entry.slide, path: entry.path)
            guard bag.width == ensemble.config.embedDim else {
                throw StageError.failed("\(entry.path): features are \(bag.width) wide, the model takes \(ensemble.config.embedDim)")
            }
            let (probabilities, raw) = try ensemble.predict(bag)
            let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] } ?? 0
            let inSample = trainedOn[bag.slide] ?? []
            table += CSV.row([bag.slide, String(bag.tiles)] + probabilities.map { String(format: "%.6f", $0) } + [classes[best], inSample.joined(separator: ";")])
            let folder = context.output + "/" + bag.slide
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let verdict = SlideVerdict(slide: bag.slide, tiles: bag.tiles, classes: classes, probabilities: probabilities.map(Double.init),
                                       predicted: classes[best], models: ensemble.paths.map { URL(fileURLWithPath: $0).lastPathComponent },
                                       inSampleFolds: inSample)
            try AtomicFile.write(JSONFile.encode(verdict), to: folder + "/" + PredictionFiles.summary)
            bag.features = []  // only where the tiles lie is needed from here on
            predicted.append(Predicted(bag: bag, probabilities: probabilities, raw: raw))
        }
        let cohort = Self.cohortRange(predicted.flatMap(\.raw))
        var withoutSlide: [String] = []
        for slide in predicted where !slide.bag.origins.isEmpty {  // a bag without coords has no place on a slide
            let file = try slideFiles.first { SlideDiscovery.stem(of: $0) == slide.bag.slide }.map { try Slide(path: $0) }
            if file == nil { withoutSlide.append(slide.bag.slide) }
            try writeAttention(slide, cohort: cohort, slide: file, to: context.output + "/" + slide.bag.slide)
        }
        try AtomicFile.write(Data(table.utf8), to: context.output + "/" + Self.tableName)
        return "\(bags.count) slides labelled by \(ensemble.models.count) model(s)"
            + (withoutSlide.isEmpty ? "" : "; no slide file (no tile strip, size from the coordinates) for " + withoutSlide.prefix(5).joined(separator: ", "))
    }

    /// Slide → the folds whose model saw it in training, from train-mil's `fold-<k>.json` beside
    /// each model (a single checkpoint without one is taken as trained on nothing known).
    static func trainedOn(modelPaths: [String]) -> [String: [String]] {
        var folds: [String: [String]] = [:]
        for path in modelPaths {
            let record = URL(fileURLWithPath: path).deletingPathExtension().appendingPathExtension("json").path
            guard let data = FileManager.default.contents(atPath: record),
                  let fold = try? JSONDecoder().decode(TrainMILStage.FoldRecord.self, from: data) else { continue }
            for slide in Set(fold.result.trainSlides + fold.result.validationSlides) { folds[slide, default: []].append(fold.result.name) }
        }
        return folds
    }

    /// The cohort's raw attention from its 1st to its 99th percentile: a slide's scores on this
    /// scale are comparable with every other slide's, so a negative slide stays cool where the
    /// percentile within the slide would light up its top tiles all the same.
    static func cohortRange(_ raw: [Float]) -> ClosedRange<Float> {
        let sorted = raw.filter(\.isFinite).sorted()
        guard let first = sorted.first, let last = sorted.last else { return 0...1 }
        let low = sorted[sorted.count / 100], high = sorted[max(0, sorted.count - 1 - sorted.count / 100)]
        return high > low ? low...high : first...max(last, first + 1)
    }

    /// attention.csv, predictions.h5 (the percentile within the slide as the score; raw and
    /// cohort-scaled attention beside it) and the tile strip.
    private func writeAttention(_ predicted: Predicted, cohort: ClosedRange<Float>, slide: Slide?, to folder: String) throws {
        let (bag, raw) = (predicted.bag, predicted.raw)
        let percentiles = percentileRanks(raw)
        let scaled = raw.map { min(1, max(0, ($0 - cohort.lowerBound) / (cohort.upperBound - cohort.lowerBound))) }
        var csv = CSV.row(["x", "y", "attention", "percentile", "cohort_scaled"])
        for (i, origin) in bag.origins.enumerated() {
            csv += CSV.row([String(origin.x), String(origin.y), String(format: "%.6g", raw[i]), String(format: "%.4f", percentiles[i]),
                            String(format: "%.4f", scaled[i])])
        }
        try AtomicFile.write(Data(csv.utf8), to: folder + "/attention.csv")
        try SlidePredictions.write(origins: bag.origins, values: percentiles, classes: ["attention"], grid: grid(bag, slide: slide),
                                   extra: [(name: "attention_raw", values: Matrix(rows: raw.count, columns: 1, values: raw)),
                                           (name: PredictionFiles.cohortAttention, values: Matrix(rows: raw.count, columns: 1, values: scaled))],
                                   to: folder)
        if let slide, topK > 0 { try drawStrip(bag, raw: raw, percentiles: percentiles, slide: slide, to: folder) }
    }

    /// Where the tiles lie. Bags from other tools may lack our attributes: the stride is then the
    /// smallest step between tile corners, and the slide size the extent of the tiles.
    private func grid(_ bag: FeatureBag, slide: Slide?) -> PredictionGrid {
        let xs = Set(bag.origins.map(\.x)).sorted(), ys = Set(bag.origins.map(\.y)).sorted()
        let steps = zip(xs.dropFirst(), xs).map { $0 - $1 } + zip(ys.dropFirst(), ys).map { $0 - $1 }
        let footprint = bag.footprint ?? steps.min() ?? 256
        let stride = Double(min(steps.min() ?? footprint, footprint))
        let width = slide?.dimensions.width ?? ((xs.last ?? 0) + footprint)
        let height = slide?.dimensions.height ?? ((ys.last ?? 0) + footprint)
        return PredictionGrid(slide: slide?.path ?? bag.path, patchSize: footprint, readLevel: 0, footprint: footprint, stride: stride,
                              width: width, height: height, micronsPerPixel: bag.micronsPerPixel ?? slide?.micronsPerPixel?.mean)
    }

    private func drawStrip(_ bag: FeatureBag, raw: [Float], percentiles: [Float], slide: Slide, to folder: String) throws {
        let footprint = bag.footprint ?? 256
        let level = slide.bestLevel(forDownsample: Double(footprint) / 128)
        let side = max(1, Int(Double(footprint) / slide.levels[level].downsample))
        let order = raw.indices.sorted { raw[$0] > raw[$1] }
        let k = min(topK, order.count / 2)
        func tiles(_ indices: [Int]) throws -> [(RGBImage, String)] {
            try indices.map { i in
                // Level-0 coordinates under each tile, to find it in a viewer.
                try (slide.readRegion(x: bag.origins[i].x, y: bag.origins[i].y, level: level, width: side, height: side),
                 String(format: "%.1f%%\n%d,%d", percentiles[i] * 100, bag.origins[i].x, bag.origins[i].y))
            }
        }
        let strip = try TileStrip.render(title: "\(bag.slide): MOST AND LEAST ATTENDED", top: tiles(Array(order.prefix(k))),
                                         bottom: tiles(Array(order.suffix(k).reversed())))
        try strip.write(to: folder + "/" + TileStrip.fileName)
    }

    static func report(_ location: StageOutputLocation) -> ReportPart {
        guard let slide = location.slide else { return ReportPart() }
        let folder = location.folder + "/" + slide
        guard let data = FileManager.default.contents(atPath: location.root + "/" + folder + "/" + PredictionFiles.summary),
              let verdict = try? JSONDecoder().decode(SlideVerdict.self, from: data) else { return ReportPart() }
        let scores = zip(verdict.classes, verdict.probabilities).map { "\(escapeHTML($0)) \(String(format: "%.3f", $1))" }
        let strip = folder + "/" + TileStrip.fileName
        let inSample = verdict.inSampleFolds ?? []
        let warning = inSample.isEmpty ? "" : "<p class=\"error\">In-sample: \(escapeHTML(inSample.joined(separator: ", "))) trained on this slide, "
            + "so this is not a held-out prediction (train-mil's out-of-fold predictions are).</p>"
        return ReportPart(html: "<p>MIL label <strong>\(escapeHTML(verdict.predicted))</strong> (\(verdict.tiles) tiles, "
                          + "\(verdict.models.count) model(s)): \(scores.joined(separator: ", "))</p>" + warning,
                          figures: FileManager.default.fileExists(atPath: location.root + "/" + strip)
                              ? [(strip, "most and least attended tiles (\(location.stageID))")] : [])
    }
}
