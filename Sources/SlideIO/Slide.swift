import Concurrency
import COpenSlide
import Dispatch
import Foundation
import Imaging

public struct SlideLevel: Equatable, Sendable {
    public let index: Int
    public let width: Int
    public let height: Int
    /// Level-0 pixels per pixel of this level.
    public let downsample: Double
}

/// Physical pixel size of level 0.
public struct MicronsPerPixel: Equatable, Sendable {
    public let x: Double
    public let y: Double
    public init(x: Double, y: Double) { self.x = x; self.y = y }
    public var mean: Double { (x + y) / 2 }
}

/// A whole-slide image (anything OpenSlide reads) or a plain PNG/JPEG treated as a one-level slide.
///
/// OpenSlide handles are documented thread-safe, so one `Slide` serves concurrent `readRegion`
/// calls from many threads; that is what makes it `Sendable`.
public final class Slide: @unchecked Sendable {
    public let path: String
    public let vendor: String
    public let levels: [SlideLevel]
    public let properties: [String: String]
    /// Level-0 pixel size as recorded by the scanner.
    public let micronsPerPixel: MicronsPerPixel?
    /// Where `micronsPerPixel` came from: `openslide` (the vendor's metadata) or
    /// `tiff-resolution` (XResolution/YResolution of a TIFF OpenSlide gave none for); nil without one.
    public let micronsPerPixelSource: String?
    public let objectivePower: Double?
    public let associatedImageNames: [String]

    private enum Backend {
        case openslide(OpaquePointer)
        case image(RGBImage)
    }
    private let backend: Backend

    public init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SlideError.fileNotFound(path: path)
        }
        // Without this, OpenSlide reports an unreadable file as an unknown format.
        if access(path, R_OK) != 0, errno == EACCES { throw SlideError.permissionDenied(path: path) }
        // Some formats (MIRAX, DICOM in later OpenSlide) are directories or files with siblings;
        // OpenSlide itself decides.
        if openslide_detect_vendor(path) != nil {
            guard let handle = openslide_open(path) else { throw SlideError.unsupportedFormat(path: path) }
            if let error = openslide_get_error(handle) {
                let reason = String(cString: error)
                openslide_close(handle)
                throw SlideError.unreadable(path: path, reason: reason)
            }
            backend = .openslide(handle)
            properties = Self.readProperties(handle)
            vendor = properties["openslide.vendor"] ?? "unknown"
            associatedImageNames = Self.strings(openslide_get_associated_image_names(handle))
            do { levels = try Self.levels(of: handle, path: path) } catch {
                openslide_close(handle)
                throw error
            }
        } else if !isDirectory.boolValue, Self.looksLikePlainImage(path) {
            let image: RGBImage
            do { image = try RGBImage.read(path: path) } catch {
                throw SlideError.unreadable(path: path, reason: "\(error)")
            }
            backend = .image(image)
            vendor = "image"
            levels = [SlideLevel(index: 0, width: image.width, height: image.height, downsample: 1)]
            properties = ["openslide.vendor": "image", "openslide.level-count": "1",
                          "openslide.level[0].width": "\(image.width)", "openslide.level[0].height": "\(image.height)"]
            associatedImageNames = []
        } else {
            throw SlideError.unsupportedFormat(path: path)
        }
        if let recorded = Self.plausibleMicronsPerPixel(properties) {
            micronsPerPixel = recorded
            micronsPerPixelSource = "openslide"
        } else if let resolution = Self.tiffResolution(path) {
            micronsPerPixel = resolution
            micronsPerPixelSource = "tiff-resolution"
        } else {
            micronsPerPixel = nil
            micronsPerPixelSource = nil
        }
        objectivePower = Self.plausibleObjectivePower(properties)
    }

    /// The pyramid's levels; refused when level 0 cannot be read, or when a level is forged:
    /// sizes of regions to read are divided by downsamples.
    private static func levels(of handle: OpaquePointer, path: String) throws -> [SlideLevel] {
        let levels = (0..<Int(openslide_get_level_count(handle))).map { index in
            var w: Int64 = 0, h: Int64 = 0
            openslide_get_level_dimensions(handle, Int32(index), &w, &h)
            return SlideLevel(index: index, width: Int(w), height: Int(h), downsample: openslide_get_level_downsample(handle, Int32(index)))
        }
        if levels.isEmpty || levels[0].width <= 0 { throw SlideError.unreadable(path: path, reason: "no readable pyramid level") }
        if let bad = levels.first(where: { $0.width <= 0 || $0.height <= 0 || !$0.downsample.isFinite || !(0.5...1e6).contains($0.downsample) }) {
            throw SlideError.unreadable(path: path, reason: "pyramid level \(bad.index) is \(bad.width) × \(bad.height) pixels at downsample \(bad.downsample)")
        }
        return levels
    }

    /// Pixel sizes a scanner or microscope can record; anything else (1e-300, inf, a negative
    /// number from a hand-edited file) counts as not recorded rather than reaching a grid.
    public static let plausibleMicronsPerPixel = 0.05...100
    public static let plausibleObjectivePowers = 0.5...500.0

    static func plausibleMicronsPerPixel(_ properties: [String: String]) -> MicronsPerPixel? {
        guard let x = properties["openslide.mpp-x"].flatMap(Double.init), let y = properties["openslide.mpp-y"].flatMap(Double.init),
              plausibleMicronsPerPixel.contains(x), plausibleMicronsPerPixel.contains(y) else { return nil }
        return MicronsPerPixel(x: x, y: y)
    }

    static func plausibleObjectivePower(_ properties: [String: String]) -> Double? {
        properties["openslide.objective-power"].flatMap(Double.init).flatMap { plausibleObjectivePowers.contains($0) ? $0 : nil }
    }

    deinit {
        if case let .openslide(handle) = backend { openslide_close(handle) }
    }

    /// The first directory's resolution tags of a TIFF file, when they give a plausible pixel size
    /// (0.05–100 µm: scanners and microscopes; the 72 dpi most software writes by default is 353 µm).
    static func tiffResolution(_ path: String) -> MicronsPerPixel? {
        guard let head = FileHandle(forReadingAtPath: path)?.readData(ofLength: 4), head.count == 4,
              head.starts(with: [0x49, 0x49]) || head.starts(with: [0x4D, 0x4D]),
              let first = try? TIFFDirectoryInfo.read(path: path).first, let mpp = first.micronsPerPixel,
              plausibleMicronsPerPixel.contains(mpp.x), plausibleMicronsPerPixel.contains(mpp.y) else { return nil }
        return MicronsPerPixel(x: mpp.x, y: mpp.y)
    }

    /// The level-0 resolution to compute with: the recorded one, else `assumed` (the user knows
    /// the scanner). A recorded value always wins: overriding the scanner would corrupt every grid.
    public func micronsPerPixel(assuming assumed: Double?) -> Double? {
        micronsPerPixel?.mean ?? assumed
    }

    public var dimensions: (width: Int, height: Int) { (levels[0].width, levels[0].height) }

    /// The level whose downsample is the largest not exceeding `downsample` (so reading it and
    /// shrinking never enlarges pixels). 1% slack: scanners store 2.0005 for a nominal 2.
    public func bestLevel(forDownsample downsample: Double) -> Int {
        var best = 0
        for level in levels where level.downsample <= downsample * 1.01 {
            if level.downsample >= levels[best].downsample { best = level.index }
        }
        return best
    }

    /// Reads `width`×`height` pixels of `level`, with the top-left corner at level-0 (`x`, `y`).
    /// Pixels outside the slide or transparent come back white, as glass would look.
    public func readRegion(x: Int, y: Int, level: Int, width: Int, height: Int) throws -> RGBImage {
        guard levels.indices.contains(level) else {
            throw SlideError.invalidRequest(path: path, reason: "level \(level) does not exist (the slide has \(levels.count))")
        }
        guard width > 0, height > 0, width * height <= 1 << 28 else {
            throw SlideError.invalidRequest(path: path, reason: "region size \(width)x\(height) is out of range")
        }
        switch backend {
        case let .openslide(handle):
            var argb = [UInt32](repeating: 0, count: width * height)
            argb.withUnsafeMutableBufferPointer {
                openslide_read_region(handle, $0.baseAddress, Int64(x), Int64(y), Int32(level), Int64(width), Int64(height))
            }
            if let error = openslide_get_error(handle) {
                throw SlideError.unreadable(path: path, reason: String(cString: error))
            }
            return Self.rgbOverWhite(premultipliedARGB: argb, width: width, height: height)
        case let .image(image):
            return Self.crop(image, x: x, y: y, width: width, height: height)
        }
    }

    /// The whole slide shrunk to fit in `maxSize`×`maxSize`, aspect ratio kept.
    ///
    /// The best level is read in horizontal strips on all cores (decoding, JPEG 2000 above all,
    /// dominates; OpenSlide handles are safe to share), each strip shrunk as soon as it is read,
    /// so memory stays bounded even for a slide without a pyramid.
    public func thumbnail(maxSize: Int) throws -> RGBImage {
        let (w, h) = dimensions
        let downsample = max(max(Double(w), Double(h)) / Double(maxSize), 1)
        let tw = max(1, Int((Double(w) / downsample).rounded())), th = max(1, Int((Double(h) / downsample).rounded()))
        let level = levels[bestLevel(forDownsample: downsample)]
        let sourceRowsPerRow = Double(level.height) / Double(th)
        // About 16 megapixels of source per strip.
        let rowsPerStrip = max(1, min(th, Int(16_000_000 / (Double(level.width) * sourceRowsPerRow))))
        let strips = (th + rowsPerStrip - 1) / rowsPerStrip
        let results = Slots<Result<RGBImage, Error>>(count: strips)
        DispatchQueue.concurrentPerform(iterations: strips) { i in
            let top = i * rowsPerStrip, rows = min(rowsPerStrip, th - top)
            let sourceTop = Int((Double(top) * sourceRowsPerRow).rounded())
            let sourceBottom = min(level.height, Int((Double(top + rows) * sourceRowsPerRow).rounded()))
            let result = Result {
                try readRegion(x: 0, y: Int((Double(sourceTop) * level.downsample).rounded()), level: level.index,
                               width: level.width, height: max(1, sourceBottom - sourceTop)).resized(width: tw, height: rows)
            }
            results[i] = result
        }
        var pixels: [UInt8] = []
        pixels.reserveCapacity(tw * th * 3)
        for strip in results.values {
            guard let strip else { throw SlideError.unreadable(path: path, reason: "a thumbnail strip was not read") }
            pixels += try strip.get().pixels
        }
        return RGBImage(width: tw, height: th, pixels: pixels)
    }

    public func associatedImage(named name: String) throws -> RGBImage {
        guard case let .openslide(handle) = backend, associatedImageNames.contains(name) else {
            throw SlideError.invalidRequest(path: path, reason: "no associated image named \(name)")
        }
        var w: Int64 = 0, h: Int64 = 0
        openslide_get_associated_image_dimensions(handle, name, &w, &h)
        var argb = [UInt32](repeating: 0, count: Int(w * h))
        argb.withUnsafeMutableBufferPointer { openslide_read_associated_image(handle, name, $0.baseAddress) }
        if let error = openslide_get_error(handle) {
            throw SlideError.unreadable(path: path, reason: String(cString: error))
        }
        return Self.rgbOverWhite(premultipliedARGB: argb, width: Int(w), height: Int(h))
    }

    /// OpenSlide returns premultiplied ARGB; compositing over white is then `c + (255 - a)`.
    static func rgbOverWhite(premultipliedARGB argb: [UInt32], width: Int, height: Int) -> RGBImage {
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        argb.withUnsafeBufferPointer { src in
            rgb.withUnsafeMutableBufferPointer { dst in
                for i in 0..<src.count {
                    let p = src[i]
                    let white = 255 &- UInt32(p >> 24)
                    dst[3 * i] = UInt8(truncatingIfNeeded: min(255, ((p >> 16) & 0xFF) &+ white))
                    dst[3 * i + 1] = UInt8(truncatingIfNeeded: min(255, ((p >> 8) & 0xFF) &+ white))
                    dst[3 * i + 2] = UInt8(truncatingIfNeeded: min(255, (p & 0xFF) &+ white))
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    private static func crop(_ image: RGBImage, x: Int, y: Int, width: Int, height: Int) -> RGBImage {
        var out = RGBImage(width: width, height: height)
        let x0 = max(x, 0), x1 = min(x + width, image.width)
        guard x0 < x1 else { return out }
        for row in max(y, 0)..<max(max(y, 0), min(y + height, image.height)) {
            let src = (row * image.width + x0) * 3
            let dst = ((row - y) * width + (x0 - x)) * 3
            out.pixels.replaceSubrange(dst..<dst + (x1 - x0) * 3, with: image.pixels[src..<src + (x1 - x0) * 3])
        }
        return out
    }

    private static func looksLikePlainImage(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let magic = [UInt8](handle.readData(ofLength: 4))
        return magic.starts(with: [0x89, 0x50, 0x4E, 0x47]) || magic.starts(with: [0xFF, 0xD8, 0xFF])
            || magic.starts(with: [0x49, 0x49, 0x2A, 0x00]) || magic.starts(with: [0x4D, 0x4D, 0x00, 0x2A])
    }

    private static func strings(_ list: UnsafePointer<UnsafePointer<CChar>?>?) -> [String] {
        guard let list else { return [] }
        var result: [String] = []
        var i = 0
        while let item = list[i] {
            result.append(String(cString: item))
            i += 1
        }
        return result
    }

    private static func readProperties(_ handle: OpaquePointer) -> [String: String] {
        var properties: [String: String] = [:]
        for name in strings(openslide_get_property_names(handle)) {
            if let value = openslide_get_property_value(handle, name) { properties[name] = String(cString: value) }
        }
        return properties
    }
}
