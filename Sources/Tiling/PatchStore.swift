import Foundation
import Imaging
import Storage

public enum PatchFormat: String, CaseIterable, Sendable {
    case jpeg, png, shard, none

    /// Where this format puts a slide's kept patches, under the slide's tiling folder.
    func store(in outputDirectory: String, patchSize: Int, jpegQuality: Int) throws -> any PatchStore {
        switch self {
        case .jpeg: return try PatchFileStore(directory: outputDirectory + "/" + TilingFiles.patchDirectory, format: .jpeg, jpegQuality: jpegQuality)
        case .png: return try PatchFileStore(directory: outputDirectory + "/" + TilingFiles.patchDirectory, format: .png, jpegQuality: jpegQuality)
        case .shard: return try PatchShardStore(path: outputDirectory + "/" + PatchShard.fileName, patchSize: patchSize)
        case .none: return NoPatchStore()
        }
    }
}

/// Where the tiler puts kept patches: one type per format. Nothing is visible under the final
/// name until `commit`, so a killed run leaves no half-written patch set behind.
protocol PatchStore: Sendable {
    /// Files can be written by the worker threads that read the patches; a shard takes its
    /// patches in tile order after them.
    var storesInParallel: Bool { get }
    func store(_ patch: RGBImage, x: Int, y: Int, tissueFraction: Double, level: Int) throws
    func commit() throws
}

/// One JPEG or PNG file per patch, named `x_y`, written into a partial folder renamed at the end.
final class PatchFileStore: PatchStore {
    let storesInParallel = true
    private let directory: String
    private let partial: String
    private let format: ImageFormat
    private let jpegQuality: Int

    init(directory: String, format: ImageFormat, jpegQuality: Int) throws {
        self.directory = directory
        self.format = format
        self.jpegQuality = jpegQuality
        partial = PartialFolder.path(for: directory)
        try? FileManager.default.removeItem(atPath: partial)
        try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true)
    }

    func store(_ patch: RGBImage, x: Int, y: Int, tissueFraction: Double, level: Int) throws {
        try PlainFile.write(try patch.encoded(as: format, jpegQuality: jpegQuality), to: "\(partial)/\(x)_\(y).\(format.fileExtension)")
    }

    func commit() throws {
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.moveItem(atPath: partial, toPath: directory)
    }
}

/// Every patch packed into one shard file (see `PatchShard`).
final class PatchShardStore: PatchStore, @unchecked Sendable {
    let storesInParallel = false
    // Used from the tiler's own thread only (`storesInParallel` is false).
    private let writer: PatchShardWriter

    init(path: String, patchSize: Int) throws {
        writer = try PatchShardWriter(path: path, patchSize: patchSize)
    }

    func store(_ patch: RGBImage, x: Int, y: Int, tissueFraction: Double, level: Int) throws {
        try writer.append(patch, PatchRecord(x: x, y: y, tissueFraction: Float(tissueFraction), level: level))
    }

    func commit() throws { try writer.commit() }
}

/// `--format none`: coordinates only.
struct NoPatchStore: PatchStore {
    let storesInParallel = true
    func store(_ patch: RGBImage, x: Int, y: Int, tissueFraction: Double, level: Int) {}
    func commit() {}
}
