import Foundation
import Storage

/// File names inside a slide's prediction folder.
public enum PredictionFiles {
    public static let csv = "predictions.csv"
    public static let hdf5 = "predictions.h5"
    public static let summary = "predictions.json"
    /// predict-mil's raw attention scaled by the cohort's range (0 at its 1st percentile, 1 at
    /// its 99th): what `heatmap --scale raw` draws for attention.
    public static let cohortAttention = "attention_cohort"
}

public struct PredictionSummary: Codable, Equatable, Sendable {
    public var slide: String
    public var tiles: Int
    public var classes: [String]
    public var meanProbabilities: [Double]
    public var seconds: Double
    public var patchesPerSecond: Double

    public init(slide: String, tiles: Int, classes: [String], meanProbabilities: [Double], seconds: Double, patchesPerSecond: Double) {
        (self.slide, self.tiles, self.classes, self.meanProbabilities, self.seconds, self.patchesPerSecond) =
            (slide, tiles, classes, meanProbabilities, seconds, patchesPerSecond)
    }
}

/// Where a slide's tiles lie, recorded beside the scores so heatmaps can place them.
public struct PredictionGrid: Sendable {
    public var slide: String
    public var patchSize: Int
    public var readLevel: Int
    /// Level-0 side of a tile, and level-0 distance between neighbouring tiles.
    public var footprint: Int
    public var stride: Double
    /// Level-0 size of the slide.
    public var width: Int
    public var height: Int
    /// Level-0 µm per pixel, recorded or assumed when tiling: heatmap TIFFs carry it.
    public var micronsPerPixel: Double?

    public init(slide: String, patchSize: Int, readLevel: Int, footprint: Int, stride: Double, width: Int, height: Int,
                micronsPerPixel: Double? = nil) {
        (self.slide, self.patchSize, self.readLevel, self.footprint, self.stride, self.width, self.height, self.micronsPerPixel) =
            (slide, patchSize, readLevel, footprint, stride, width, height, micronsPerPixel)
    }

    /// Level-0 pixels a side: past the largest slides scanned.
    public static let maximumSide = 1 << 20
    /// Cells of the score grid a heatmap allocates (stride-sized, over the whole slide).
    public static let maximumCells = 1 << 26

    /// Refuses what no slide's tiling gives, before a heatmap sizes a grid from it: a slide size,
    /// tile size or stride out of range, more grid cells than any real tiling, or a tile lying
    /// outside the slide (drawn nowhere, or past the grid's end).
    public func check(origins: [(x: Int, y: Int)], path: String) throws {
        func fail(_ reason: String) -> StorageError { .malformed(path: path, reason: reason) }
        let side = 1...Self.maximumSide
        guard side.contains(width), side.contains(height) else {
            throw fail("a slide of \(width)×\(height) px is not a slide's size (1 to \(Self.maximumSide) a side)")
        }
        guard side.contains(footprint) else { throw fail("a tile of \(footprint) level-0 px is not a tile size (1 to \(Self.maximumSide))") }
        guard stride.isFinite, stride >= 1, stride <= Double(Self.maximumSide) else {
            throw fail("a stride of \(stride) level-0 px between tiles is not a tiling's (1 to \(Self.maximumSide))")
        }
        guard (Double(width) / stride) * (Double(height) / stride) <= Double(Self.maximumCells) else {
            throw fail("a stride of \(stride) px over a \(width)×\(height) slide makes more than \(Self.maximumCells) grid cells")
        }
        if let mpp = micronsPerPixel, !(0.01...1000).contains(mpp) { throw fail("\(mpp) µm per pixel is not a slide's resolution") }
        if let i = origins.firstIndex(where: { $0.x < 0 || $0.y < 0 || $0.x >= width || $0.y >= height }) {
            throw fail("tile \(i) at (\(origins[i].x), \(origins[i].y)) lies outside the \(width)×\(height) slide")
        }
    }
}

/// A slide's predictions read back: what heatmaps and aggregation need.
public struct SlidePredictions: Sendable {
    public var slide: String
    public var classes: [String]
    public var origins: [(x: Int, y: Int)]
    /// [tiles, classes]
    public var probabilities: [Float]
    public var footprint: Int
    public var stride: Double
    public var slideWidth: Int
    public var slideHeight: Int
    /// Level-0 µm per pixel the tiling used (recorded or assumed); nil when it had none.
    public var micronsPerPixel: Double?

    public init(directory: String) throws {
        let path = directory + "/" + PredictionFiles.hdf5
        let reader = try HDF5Reader(path: path)
        let coords = try reader.int64Matrix("coords")
        let probabilities = try reader.floatMatrix("probabilities")
        guard case let .string(classesJSON) = try reader.attribute("classes", of: "probabilities"),
              let classes = (try? JSONSerialization.jsonObject(with: Data(classesJSON.utf8))) as? [String],
              classes.count == probabilities.columns, coords.rows == probabilities.rows else {
            throw StorageError.malformed(path: path, reason: "classes and probabilities disagree")
        }
        guard probabilities.values.allSatisfy(\.isFinite) else {
            throw StorageError.malformed(path: path, reason: "probabilities hold NaN or infinity; predict the slide again")
        }
        guard coords.columns == 2 else { throw StorageError.malformed(path: path, reason: "coords is [\(coords.rows), \(coords.columns)], not [N, 2]") }
        func int(_ name: String) throws -> Int {
            guard case let .int(v) = try reader.attribute(name, of: "coords") else { throw StorageError.malformed(path: path, reason: "\(name) is not an integer") }
            return Int(v)
        }
        guard case let .double(stride) = try reader.attribute("stride_level0", of: "coords"),
              case let .string(slide) = try reader.attribute("slide", of: "coords") else {
            throw StorageError.malformed(path: path, reason: "missing grid attributes")
        }
        self.slide = slide
        self.classes = classes
        origins = (0..<coords.rows).map { (x: Int(coords.values[2 * $0]), y: Int(coords.values[2 * $0 + 1])) }
        self.probabilities = probabilities.values
        footprint = try int("footprint_level0")
        self.stride = stride
        slideWidth = try int("slide_width")
        slideHeight = try int("slide_height")
        if case let .double(mpp) = try? reader.attribute("mpp_level0", of: "coords"), mpp.isFinite, mpp > 0 { micronsPerPixel = mpp }
        try PredictionGrid(slide: slide, patchSize: footprint, readLevel: 0, footprint: footprint, stride: stride, width: slideWidth,
                           height: slideHeight, micronsPerPixel: micronsPerPixel).check(origins: origins, path: path)
    }

    /// Writes `predictions.h5`: coords with the grid's attributes, and `probabilities` [tiles,
    /// classes] (any per-tile scores) with the class names; `extra` datasets ride along.
    public static func write(origins: [(x: Int, y: Int)], values: [Float], classes: [String], grid: PredictionGrid,
                             extra: [(name: String, values: Matrix<Float>)] = [], to directory: String) throws {
        try grid.check(origins: origins, path: grid.slide)
        let classesJSON = String(decoding: try JSONSerialization.data(withJSONObject: classes), as: UTF8.self)
        try AtomicFile.produce(directory + "/" + PredictionFiles.hdf5) { temporary in
            let writer = try HDF5Writer(path: temporary)
            var attributes: [String: HDF5Attribute] = [
                "patch_size": .int(Int64(grid.patchSize)), "patch_level": .int(Int64(grid.readLevel)),
                "footprint_level0": .int(Int64(grid.footprint)), "stride_level0": .double(grid.stride),
                "slide_width": .int(Int64(grid.width)), "slide_height": .int(Int64(grid.height)), "slide": .string(grid.slide),
            ]
            if let mpp = grid.micronsPerPixel { attributes["mpp_level0"] = .double(mpp) }
            try writer.write("coords", Matrix(rows: origins.count, columns: 2, values: origins.flatMap { [Int64($0.x), Int64($0.y)] }),
                             attributes: attributes)
            try writer.write("probabilities", Matrix(rows: origins.count, columns: classes.count, values: values),
                             attributes: ["classes": .string(classesJSON)])
            for (name, matrix) in extra { try writer.write(name, matrix) }
            try writer.close()
        }
    }

    /// Probabilities of one class, a value per tile.
    public func scores(of className: String, path: String) throws -> [Float] {
        guard let k = classes.firstIndex(of: className) else {
            throw StorageError.malformed(path: path, reason: "no class '\(className)' (classes: \(classes.joined(separator: ", ")))")
        }
        return (0..<origins.count).map { probabilities[$0 * classes.count + k] }
    }
}
