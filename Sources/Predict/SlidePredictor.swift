import ViT
import Foundation
import SDMAE
import SlideIO
import Storage
import Results
import Tiling

/// Per-tile class probabilities for one slide, from the tiling stage's coordinates.
public struct SlidePredictor {
    public let encoder: any PatchEncoder
    public let probe: LinearProbe
    public var batchSize = 64
    public var showProgress = true

    public init(encoder: any PatchEncoder, probe: LinearProbe, classifierPath: String) throws {
        guard probe.width == encoder.featureWidth else {
            throw ClassifierError.incompatible(path: classifierPath,
                                               reason: "the classifier takes \(probe.width) features, \(encoder.encoderName) gives \(encoder.featureWidth)")
        }
        self.encoder = encoder
        self.probe = probe
    }

    /// `tileDirectory` is the slide's folder written by `wsi tile` (tiling.json, coords.h5, and
    /// patches.shard when tiled with --format shard; otherwise tiles are re-read from the slide).
    @discardableResult
    public func run(slidePath: String, tileDirectory: String, outputDirectory: String) throws -> PredictionSummary {
        let start = Date()
        let folder = TilingFolder(tileDirectory)
        let tiling = try folder.summary()
        let origins = try folder.origins()
        let dataset = try folder.patches(slidePath: slidePath)

        let c = probe.classes.count
        var probabilities = [Float](repeating: 0, count: origins.count * c)
        var extractor = FeatureExtractor(encoder: encoder)
        extractor.batchSize = batchSize
        extractor.showProgress = showProgress
        try extractor.run(dataset) { indices, features in
            let p = probe.probabilities(features)
            for (row, index) in indices.enumerated() {
                for k in 0..<c { probabilities[index * c + k] = p[row * c + k] }
            }
        }

        // Non-finite weights or features give NaN everywhere: refuse before anything is written.
        if let bad = probabilities.firstIndex(where: { !$0.isFinite }) {
            throw ClassifierError.nonFinite(path: slidePath, reason: "the probability of tile \(bad / max(c, 1)) is not a number: "
                                            + "the encoder or classifier weights hold NaN or infinity")
        }
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        var csv = CSV.row(["x", "y"] + probe.classes.map { "p_" + $0 } + ["predicted"])
        for (i, origin) in origins.enumerated() {
            let row = probabilities[(i * c)..<((i + 1) * c)]
            let best = row.indices.max { row[$0] < row[$1] }.map { probe.classes[$0 - i * c] } ?? ""
            csv += CSV.row([String(origin.x), String(origin.y)] + row.map { String(format: "%.6f", $0) } + [best])
        }
        try AtomicFile.write(Data(csv.utf8), to: outputDirectory + "/" + PredictionFiles.csv)
        let grid = PredictionGrid(slide: slidePath, patchSize: tiling.patchSize, readLevel: tiling.readLevel, footprint: tiling.footprintLevel0,
                                  stride: tiling.strideLevel0, width: tiling.width, height: tiling.height, micronsPerPixel: tiling.micronsPerPixel)
        try SlidePredictions.write(origins: origins, values: probabilities, classes: probe.classes, grid: grid, to: outputDirectory)
        let seconds = Date().timeIntervalSince(start)
        let means = (0..<c).map { k in origins.isEmpty ? 0 : (0..<origins.count).map { Double(probabilities[$0 * c + k]) }.reduce(0, +) / Double(origins.count) }
        let summary = PredictionSummary(slide: slidePath, tiles: origins.count, classes: probe.classes, meanProbabilities: means,
                                        seconds: seconds, patchesPerSecond: Double(origins.count) / seconds)
        try AtomicFile.write(try JSONFile.encode(summary), to: outputDirectory + "/" + PredictionFiles.summary)
        return summary
    }
}
