import Foundation
import SlideIO
import Storage

/// A slide's tiling output folder, read the same way by prediction, pretraining and the report.
public struct TilingFolder: Sendable {
    public let path: String

    public init(_ path: String) { self.path = path }

    /// Whether `path` holds a tiling output (its summary is written last).
    public static func isTilingFolder(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + TilingFiles.summary)
    }

    public func summary() throws -> TilingSummary {
        let file = path + "/" + TilingFiles.summary
        guard let data = FileManager.default.contents(atPath: file) else {
            throw StorageError.cannotOpen(path: file, reason: "no tiling output for this slide (run the tile stage first)")
        }
        do { return try JSONText.decode(TilingSummary.self, from: data) } catch {
            throw StorageError.malformed(path: file, reason: describeError(error))
        }
    }

    /// Level-0 origins of the kept tiles, in the order of every per-tile output.
    public func origins() throws -> [(x: Int, y: Int)] {
        let coordinates = try HDF5Reader(path: path + "/" + TilingFiles.coordinatesHDF5).int64Matrix("coords")
        guard coordinates.columns == 2 else {
            throw StorageError.malformed(path: path + "/" + TilingFiles.coordinatesHDF5, reason: "coords must be [N, 2]")
        }
        return (0..<coordinates.rows).map { (x: Int(coordinates.values[2 * $0]), y: Int(coordinates.values[2 * $0 + 1])) }
    }

    /// Each kept tile's annotation class (nil when unlabelled) and the classes, or nil when the
    /// slide was tiled without annotations.
    public func tileLabels() throws -> (labels: [String?], classes: [String])? {
        let file = path + "/" + TilingFiles.coordinatesHDF5
        let reader = try HDF5Reader(path: file)
        guard let labels = try? reader.int64Matrix("labels") else { return nil }
        guard case let .string(json) = try reader.attribute("classes", of: "labels"),
              let classes = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String] else {
            throw StorageError.malformed(path: file, reason: "labels has no class list")
        }
        // Every per-tile output indexes labels by tile: one per coordinate pair, or the file is not ours.
        let tiles = try reader.int64Matrix("coords").rows
        guard labels.rows == tiles, labels.columns == 1 else {
            throw StorageError.malformed(path: file, reason: "labels holds \(labels.rows)×\(labels.columns) values for \(tiles) tiles")
        }
        return (labels.values.map { $0 >= 0 && Int($0) < classes.count ? classes[Int($0)] : nil }, classes)
    }

    public var shardPath: String? {
        let file = path + "/" + PatchShard.fileName
        return FileManager.default.fileExists(atPath: file) ? file : nil
    }

    public var patchDirectory: String? {
        let folder = path + "/" + TilingFiles.patchDirectory
        return FileManager.default.fileExists(atPath: folder) ? folder : nil
    }

    /// The kept tiles in coordinate order: from the shard when there is one, else re-read from
    /// `slidePath` at the recorded level and size (formats jpeg, png, none).
    public func patches(slidePath: String) throws -> PatchDataset {
        let summary = try summary()
        let origins = try origins()
        if let shardPath {
            let shard = try PatchShardReader(path: shardPath)
            guard shard.records.map({ ($0.x, $0.y) }).elementsEqual(origins, by: { $0.0 == $1.x && $0.1 == $1.y }) else {
                throw StorageError.malformed(path: shardPath, reason: "shard and coords.h5 list different tiles")
            }
            return PatchDataset(sources: (0..<shard.count).map { .shard(shard, $0) })
        }
        let slide = try Slide(path: slidePath)
        return PatchDataset(sources: origins.map {
            .region(slide, x: $0.x, y: $0.y, level: summary.readLevel, size: summary.readSize, patchSize: summary.patchSize)
        })
    }

    /// The stored patches, for training: the shard, or the patch files (never the QC pictures).
    public func storedPatchFiles() -> [String] {
        if let shardPath { return [shardPath] }
        guard let folder = patchDirectory, let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder + "/" + $0 }
    }
}
