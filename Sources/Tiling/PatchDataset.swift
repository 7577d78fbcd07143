import Concurrency
import Dispatch
import Foundation
import Imaging
import Storage
import SlideIO

public enum DatasetError: Error, CustomStringConvertible, Equatable {
    case empty(paths: [String])
    case notFound(path: String)

    public var description: String {
        switch self {
        case let .empty(paths): return "\(paths.joined(separator: ", ")): no PNG/JPEG patches and no patch shards found"
        case let .notFound(path): return "\(path): no such file or directory"
        }
    }
}

/// Patches for training and embedding: image files (PNG/JPEG, any size, found recursively) and
/// the tiling stage's packed shards, mixed freely. Reads are thread-safe.
public final class PatchDataset: @unchecked Sendable {
    public indirect enum Source: Sendable {
        case file(String)
        /// A `size`² square of another source at (x, y): the crops of one picture for evaluation.
        case crop(Source, x: Int, y: Int, size: Int)
        case shard(PatchShardReader, Int)
        /// A tile read straight from the slide: `size`² pixels of `level` at level-0 (x, y),
        /// resampled to `patchSize`² (as the tiling stage would have written it).
        case region(Slide, x: Int, y: Int, level: Int, size: Int, patchSize: Int)
    }

    public let sources: [Source]

    public var count: Int { sources.count }

    public init(sources: [Source]) { self.sources = sources }

    public init(paths: [String]) throws {
        var sources: [Source] = []
        for root in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else { throw DatasetError.notFound(path: root) }
            let files: [String]
            if isDirectory.boolValue {
                let found = try FolderWalk.files(under: root) { name in
                    name == TilingFiles.summary || name.hasSuffix(".shard") || PictureFiles.isPicture(name)
                }
                let tilingFolders = found.filter { $0.hasSuffix("/" + TilingFiles.summary) }.map { String($0.dropLast(TilingFiles.summary.count + 1)) }
                // A tiling output folder contributes its stored patches, not its QC pictures.
                let inTilingFolder = { (file: String) in tilingFolders.contains { file.hasPrefix($0 + "/") } }
                files = (found.filter { !inTilingFolder($0) } + tilingFolders.flatMap { TilingFolder($0).storedPatchFiles() }).sorted()
            } else {
                files = [root]
            }
            for file in files {
                let name = URL(fileURLWithPath: file).lastPathComponent
                if name.hasPrefix(".") { continue }
                if name.hasSuffix(".shard") {
                    let shard = try PatchShardReader(path: file)
                    sources += (0..<shard.count).map { .shard(shard, $0) }
                } else if PictureFiles.isPicture(file) {
                    sources.append(.file(file))
                }
            }
        }
        guard !sources.isEmpty else { throw DatasetError.empty(paths: paths) }
        self.sources = sources
    }

    public func image(_ index: Int) throws -> RGBImage {
        switch sources[index] {
        case let .file(path): return try RGBImage.read(path: path)
        case let .shard(shard, i): return try shard.patch(i)
        case let .region(slide, x, y, level, size, patchSize):
            let image = try slide.readRegion(x: x, y: y, level: level, width: size, height: size)
            return size == patchSize ? image : image.resized(width: patchSize, height: patchSize)
        case let .crop(source, x, y, size):
            return try Self.image(of: source).cropped(x: x, y: y, width: size, height: size)
        }
    }

    private static func image(of source: Source) throws -> RGBImage {
        try PatchDataset(sources: [source]).image(0)
    }

    /// Patches `indices` decoded on `workers` threads into planar floats [count, 3, size, size];
    /// `prepare` turns the patch in slot i into its pixels (augmented or plainly resized).
    public func planarImages(_ indices: [Int], size: Int, workers: Int,
                      _ prepare: @Sendable (RGBImage, Int, UnsafeMutablePointer<Float>) -> Void) throws -> [Float] {
        let plane = 3 * size * size, workers = max(1, workers)
        var images = [Float](repeating: 0, count: indices.count * plane)
        let failures = FailureSlot()
        images.withUnsafeMutableBufferPointer { buffer in
            let base = UncheckedPointer(buffer.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for slot in stride(from: worker, to: indices.count, by: workers) {
                    do { prepare(try image(indices[slot]), slot, base.pointer + slot * plane) } catch { failures.record(error) }
                }
            }
        }
        if let error = failures.error { throw error }
        return images
    }

    /// A name for the patch in outputs: the file path, or shard path with its coordinates.
    public func name(_ index: Int) -> String {
        switch sources[index] {
        case let .file(path): return path
        case let .shard(shard, i): return "\(shard.path)#\(shard.records[i].x)_\(shard.records[i].y)"
        case let .region(slide, x, y, _, _, _): return "\(slide.path)#\(x)_\(y)"
        case let .crop(source, x, y, size): return PatchDataset(sources: [source]).name(0) + "@\(x),\(y)+\(size)"
        }
    }
}
