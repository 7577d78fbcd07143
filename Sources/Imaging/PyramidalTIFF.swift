import CTIFF
import Foundation

public enum TIFFCompression: String, CaseIterable, Sendable {
    case jpeg, deflate
}

/// Writes a tiled pyramidal TIFF as OpenSlide's generic-TIFF reader and QuPath open it: one
/// directory per level, each half the size of the one before, down to a single tile. Pixels are
/// asked for one row of tiles at a time, so memory is one tile row whatever the image size.
public enum PyramidalTIFF {
    public static let tileSize = 256

    /// A level's tiles are never wider or taller than the level: libtiff's RGBA reader, which
    /// OpenSlide uses for deflate tiles, misplaces pixels of a tile larger than its image (a
    /// 139 × 112 level drew 99 % transparent). Tile sides are multiples of 16, as TIFF requires.
    static func tileSide(width: Int, height: Int) -> Int {
        min(tileSize, max(16, min(width, height) / 16 * 16))
    }

    /// `pixels(level, width, y0, rows)` returns `rows` image rows from `y0` of the level
    /// (`width` × `rows` × channels bytes, row-major); level 0 is `width` × `height`.
    /// `micronsPerPixel` of level 0 becomes the resolution tags (pixels per centimetre); without
    /// it they still say the scale, unitless, as pixels per slide pixel (`1 / slidePixelsPerPixel`).
    public static func write(path: String, width: Int, height: Int, channels: Int, compression: TIFFCompression, jpegQuality: Int = 90,
                             micronsPerPixel: Double?, slidePixelsPerPixel: Double = 1, description: String,
                             pixels: (_ level: Int, _ width: Int, _ y0: Int, _ rows: Int) throws -> [UInt8]) throws -> [(width: Int, height: Int)] {
        precondition(channels == 3 || channels == 4, "RGB or RGBA")
        guard compression == .deflate || channels == 3 else {
            throw ImageCodecError.encodeFailed(reason: "JPEG has no alpha channel: write RGBA with deflate")
        }
        ctiff_silence()
        // BigTIFF when the base level could pass 4 GiB uncompressed.
        let big = width * height * channels > (1 << 32) - (1 << 28)
        guard let tif = TIFFOpen(path, big ? "w8" : "w") else { throw ImageCodecError.encodeFailed(reason: "libtiff cannot create \(path)") }
        var closed = false
        defer { if !closed { TIFFClose(tif) } }
        var levels: [(width: Int, height: Int)] = []
        var (w, h, scale) = (width, height, 1.0)
        while true {
            levels.append((w, h))
            let (unit, resolution) = micronsPerPixel.map { (Int32(RESUNIT_CENTIMETER), 10_000 / ($0 * scale)) }
                ?? (Int32(RESUNIT_NONE), 1 / (slidePixelsPerPixel * scale))
            let side = Self.tileSide(width: w, height: h)
            guard ctiff_set_level(tif, UInt32(w), UInt32(h), UInt32(side), Int32(channels), compression == .jpeg ? 1 : 0, Int32(jpegQuality),
                                  levels.count > 1 ? 1 : 0, unit, resolution, description) == 1 else {
                throw ImageCodecError.encodeFailed(reason: "\(path): libtiff refused the tags of level \(levels.count - 1)")
            }
            var tile = [UInt8](repeating: 0, count: side * side * channels)
            for y0 in stride(from: 0, to: h, by: side) {
                let rows = min(side, h - y0)
                let band = try pixels(levels.count - 1, w, y0, rows)
                guard band.count == w * rows * channels else {
                    throw ImageCodecError.encodeFailed(reason: "\(path): level \(levels.count - 1) band at row \(y0) has \(band.count) bytes, not \(w * rows * channels)")
                }
                for x0 in stride(from: 0, to: w, by: side) {
                    // Edge tiles are padded with the last row and column (JPEG blocks then stay clean).
                    let inside = min(side, w - x0)
                    band.withUnsafeBufferPointer { source in
                        tile.withUnsafeMutableBufferPointer { target in
                            for ty in 0..<side {
                                let from = source.baseAddress! + (min(ty, rows - 1) * w + x0) * channels
                                let to = target.baseAddress! + ty * side * channels
                                to.update(from: from, count: inside * channels)
                                for tx in inside..<side {
                                    (to + tx * channels).update(from: from + (inside - 1) * channels, count: channels)
                                }
                            }
                        }
                    }
                    let written = tile.withUnsafeMutableBytes { TIFFWriteTile(tif, $0.baseAddress, UInt32(x0), UInt32(y0), 0, 0) }
                    guard written >= 0 else { throw ImageCodecError.encodeFailed(reason: "\(path): libtiff failed writing a tile (disk full?)") }
                }
            }
            guard TIFFWriteDirectory(tif) == 1 else { throw ImageCodecError.encodeFailed(reason: "\(path): libtiff failed writing level \(levels.count - 1)") }
            if w <= Self.tileSize && h <= Self.tileSize { break }
            (w, h, scale) = (max(1, (w + 1) / 2), max(1, (h + 1) / 2), scale * 2)
        }
        TIFFClose(tif)
        closed = true
        return levels
    }
}

/// What a TIFF file holds, directory by directory: for tests, `wsi info` and resolution fallbacks.
public struct TIFFDirectoryInfo: Equatable, Sendable {
    public var width: Int
    public var height: Int
    /// Nil for a stripped (untiled) directory.
    public var tileWidth: Int?
    public var tileHeight: Int?
    public var compression: Int
    /// µm per pixel from XResolution/YResolution when the unit is centimetre or inch.
    public var micronsPerPixel: (x: Double, y: Double)?

    public static func == (a: Self, b: Self) -> Bool {
        a.width == b.width && a.height == b.height && a.tileWidth == b.tileWidth && a.tileHeight == b.tileHeight
            && a.compression == b.compression && a.micronsPerPixel?.x == b.micronsPerPixel?.x && a.micronsPerPixel?.y == b.micronsPerPixel?.y
    }

    public static func read(path: String) throws -> [TIFFDirectoryInfo] {
        ctiff_silence()
        guard let tif = TIFFOpen(path, "r") else { throw ImageCodecError.decodeFailed(path: path, reason: "libtiff cannot open it") }
        defer { TIFFClose(tif) }
        var directories: [TIFFDirectoryInfo] = []
        repeat {
            var width: UInt32 = 0, height: UInt32 = 0, tileWidth: UInt32 = 0, tileHeight: UInt32 = 0, compression: UInt16 = 1
            guard ctiff_dimensions(tif, &width, &height) == 1 else { break }
            let tiled = ctiff_tile_size(tif, &tileWidth, &tileHeight) == 1
            _ = ctiff_compression(tif, &compression)
            var x: Float = 0, y: Float = 0, unit: UInt16 = 0
            var mpp: (x: Double, y: Double)?
            if ctiff_resolution(tif, &x, &y, &unit) == 1, x > 0, y > 0 {
                let micronsPerUnit: Double? = unit == UInt16(RESUNIT_CENTIMETER) ? 10_000 : unit == UInt16(RESUNIT_INCH) ? 25_400 : nil
                mpp = micronsPerUnit.map { (x: $0 / Double(x), y: $0 / Double(y)) }
            }
            directories.append(TIFFDirectoryInfo(width: Int(width), height: Int(height), tileWidth: tiled ? Int(tileWidth) : nil,
                                                 tileHeight: tiled ? Int(tileHeight) : nil, compression: Int(compression), micronsPerPixel: mpp))
        } while TIFFReadDirectory(tif) == 1
        return directories
    }
}
