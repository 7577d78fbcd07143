import Foundation
import Storage

public enum BagError: Error, CustomStringConvertible, Equatable {
    case noBags(paths: [String])
    case duplicate(slide: String, first: String, second: String)
    case malformed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .noBags(paths): return "no feature files (*.h5 with a 'features' dataset) under \(paths.joined(separator: ", "))"
        case let .duplicate(slide, first, second): return "two feature files for slide '\(slide)': \(first) and \(second)"
        case let .malformed(path, reason): return "\(path): \(reason)"
        }
    }
}

/// One slide's bag: the features of its tiles and their level-0 corners.
public struct FeatureBag: Sendable {
    public var slide: String
    public var path: String
    /// N×D, row-major.
    public var features: [Float]
    public var width: Int
    /// Level-0 top-left corners, when the file has them.
    public var origins: [(x: Int, y: Int)]
    /// Level-0 side of a tile (`patch_size_level0`, or `patch_size` × `downsample`), when known.
    public var footprint: Int?
    /// Level-0 µm per pixel the tiling used (`mpp_level0`, ours; CLAM and TRIDENT record none).
    public var micronsPerPixel: Double?

    public var tiles: Int { width == 0 ? 0 : features.count / width }

    /// Past this, products and sums of squares in training overflow Float and the loss turns
    /// into NaN, which would then be blamed on the learning rate. Published encoders' features
    /// stay within a few hundred.
    public static let maximumFeatureMagnitude: Float = 1e6

    /// Reads the CLAM/TRIDENT layout: `features` float [N, D] and optionally `coords` [N, 2].
    public static func read(slide: String, path: String) throws -> FeatureBag {
        let reader: HDF5Reader
        do { reader = try HDF5Reader(path: path) } catch { throw BagError.malformed(path: path, reason: describeError(error)) }
        let features: Matrix<Float>
        do { features = try reader.floatMatrix("features") } catch {
            throw BagError.malformed(path: path, reason: "no readable 2-D 'features' dataset (\(describeError(error)))")
        }
        guard features.rows > 0 else { throw BagError.malformed(path: path, reason: "the bag of slide '\(slide)' is empty (0 tiles)") }
        if let bad = features.values.firstIndex(where: { !$0.isFinite }) {
            throw BagError.malformed(path: path, reason: "feature \(bad % features.columns) of tile \(bad / features.columns) is not a number")
        }
        if let bad = features.values.firstIndex(where: { abs($0) > maximumFeatureMagnitude }) {
            throw BagError.malformed(path: path, reason: "feature \(bad % features.columns) of tile \(bad / features.columns) is "
                + "\(features.values[bad]); encoders' features are far smaller (at most \(Int(maximumFeatureMagnitude)) is accepted): "
                + "was this file written by another program, or damaged?")
        }
        var origins: [(x: Int, y: Int)] = []
        var footprint: Int?
        if let coords = try? reader.int64Matrix("coords") {
            guard coords.rows == features.rows, coords.columns == 2 else {
                throw BagError.malformed(path: path, reason: "coords has \(coords.rows)×\(coords.columns) values for \(features.rows) tiles")
            }
            if let bad = coords.values.firstIndex(where: { !(0...Self.maximumCoordinate).contains($0) }) {
                throw BagError.malformed(path: path, reason: "tile \(bad / 2) lies at \(coords.values[bad]) px, not on a slide "
                    + "(coordinates are level-0 pixels from 0 to \(Self.maximumCoordinate))")
            }
            origins = (0..<coords.rows).map { (x: Int(coords.values[2 * $0]), y: Int(coords.values[2 * $0 + 1])) }
            footprint = try Self.footprint(reader, path: path)
        }
        var bag = FeatureBag(slide: slide, path: path, features: features.values, width: features.columns, origins: origins, footprint: footprint)
        if case let .double(mpp)? = try? reader.attribute("mpp_level0", of: "coords"), mpp.isFinite, mpp > 0 {
            bag.micronsPerPixel = mpp
        }
        return bag
    }

    /// Level-0 pixels: far past the largest slides, and small enough for any later arithmetic.
    static let maximumCoordinate: Int64 = 1_000_000_000
    /// A tile's level-0 side, at most (a 1,000-px tile read at downsample 1,000).
    static let maximumFootprint = 1_000_000.0

    /// `patch_size_level0`, or `patch_size` × `downsample`, checked: a bag's tile size places its
    /// tiles on heatmaps, so a missing one is nil and a nonsensical one is refused.
    private static func footprint(_ reader: HDF5Reader, path: String) throws -> Int? {
        func number(_ name: String) throws -> Double? {
            switch try? reader.attribute(name, of: "coords") {
            case let .int(v)?: return Double(v)
            case let .double(v)?: return v
            // CLAM writes pairs (x and y); tiles are square.
            case let .doubles(v)?: return v.first
            case let .ints(v)?: return v.first.map(Double.init)
            case let .string(text)?: throw BagError.malformed(path: path, reason: "coords attribute \(name) is '\(text)', not a number")
            case nil: return nil
            }
        }
        let side: Double
        if let level0 = try number("patch_size_level0") {
            side = level0
        } else if let size = try number("patch_size") {
            side = size * (try number("downsample") ?? 1)
        } else {
            return nil
        }
        guard side.isFinite, (1...maximumFootprint).contains(side) else {
            throw BagError.malformed(path: path, reason: "the tiles' level-0 size \(side) (coords attribute patch_size_level0, or patch_size × "
                + "downsample) is not a tile size: expected 1 to \(Int(maximumFootprint)) pixels")
        }
        return Int(side.rounded())
    }

    /// Finds feature files under `paths` and names each by its slide: `<slide>.h5` as CLAM and
    /// TRIDENT write them (also inside their `h5_files`/`features_*` folders), or
    /// `<slide>/features.h5` as the features stage writes them.
    public static func discover(_ paths: [String]) throws -> [(slide: String, path: String)] {
        var found: [String: String] = [:]
        func add(_ file: String) throws {
            let url = URL(fileURLWithPath: file)
            let slide = url.lastPathComponent == "features.h5" ? url.deletingLastPathComponent().lastPathComponent
                                                               : url.deletingPathExtension().lastPathComponent
            // The same file reached twice (a link beside it, or two arguments) is one slide.
            if let other = found[slide], FolderWalk.realPath(other) != FolderWalk.realPath(file) {
                throw BagError.duplicate(slide: slide, first: other, second: file)
            }
            found[slide] = file
        }
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw BagError.malformed(path: path, reason: "no such file or folder")
            }
            if isDirectory.boolValue {
                let files = try FolderWalk.files(under: path, depth: 2) { $0.lowercased().hasSuffix(".h5") || $0.lowercased().hasSuffix(".hdf5") }
                for file in files { try add(file) }
            } else {
                try add(path)
            }
        }
        guard !found.isEmpty else { throw BagError.noBags(paths: paths) }
        return found.sorted { $0.key < $1.key }.map { (slide: $0.key, path: $0.value) }
    }
}
