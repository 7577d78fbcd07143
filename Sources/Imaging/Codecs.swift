import CPNG
import CTurboJPEG
import Foundation
import Storage

public enum ImageFormat: String, CaseIterable, Sendable {
    case png, jpeg

    public var fileExtension: String { self == .png ? "png" : "jpg" }

    public init?(path: String) {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        default: return nil
        }
    }
}

/// Pictures read as patches: the formats written here plus TIFF, as labelled tissue sets ship.
public enum PictureFiles {
    public static let extensions: Set<String> = ["png", "jpg", "jpeg", "tif", "tiff"]

    public static func isPicture(_ path: String) -> Bool {
        extensions.contains(URL(fileURLWithPath: path).pathExtension.lowercased())
    }
}

extension RGBImage {
    /// The most pixels a picture (PNG, JPEG, TIFF) may declare: 64 Mpx, 192 MB decoded. Checked
    /// from the header before anything is allocated; whole slides are OpenSlide's, read by region.
    public static let maximumPixels = 64 * 1024 * 1024

    /// Refuses a declared size over the limit, naming the file.
    static func checkDeclaredSize(width: Int, height: Int, path: String) throws {
        guard width > 0, height > 0, width <= maximumPixels, height <= maximumPixels, width * height <= maximumPixels else {
            throw ImageCodecError.decodeFailed(path: path, reason: "it declares \(width)×\(height) pixels, more than the "
                + "\(maximumPixels / (1024 * 1024)) Mpx a picture may have; a whole slide is opened as a slide (SVS, tiled TIFF, …)")
        }
    }
}

public enum ImageCodecError: Error, CustomStringConvertible, Equatable {
    case decodeFailed(path: String, reason: String)
    case encodeFailed(reason: String)
    case unsupportedFormat(path: String)

    public var description: String {
        switch self {
        case let .decodeFailed(path, reason): return "\(path): cannot decode image: \(reason)"
        case let .encodeFailed(reason): return "cannot encode image: \(reason)"
        case let .unsupportedFormat(path): return "\(path): not a PNG, JPEG or TIFF picture"
        }
    }
}

/// PNG through libpng's simplified API (no setjmp, which Swift cannot use).
public enum PNG {
    public static func encode(_ image: RGBImage) throws -> Data {
        try image.pixels.withUnsafeBytes { try encode(raw: $0, width: image.width, height: image.height, format: cpng_format_rgb()) }
    }

    /// An RGBA PNG: `rgba` holds width*height*4 bytes, straight (not premultiplied) alpha.
    public static func encodeRGBA(_ rgba: [UInt8], width: Int, height: Int) throws -> Data {
        precondition(rgba.count == width * height * 4)
        return try rgba.withUnsafeBytes { try encode(raw: $0, width: width, height: height, format: cpng_format_rgba()) }
    }

    private static func encode(raw: UnsafeRawBufferPointer, width: Int, height: Int, format: UInt32) throws -> Data {
        var image = png_image()
        image.version = cpng_image_version()
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = format
        var size: Int = 0
        guard png_image_write_to_memory(&image, nil, &size, 0, raw.baseAddress, 0, nil) != 0 else {
            throw ImageCodecError.encodeFailed(reason: message(of: image))
        }
        var data = Data(count: size)
        let ok = data.withUnsafeMutableBytes {
            png_image_write_to_memory(&image, $0.baseAddress, &size, 0, raw.baseAddress, 0, nil)
        }
        guard ok != 0 else { throw ImageCodecError.encodeFailed(reason: message(of: image)) }
        data.count = size
        return data
    }

    /// Decodes any PNG (grey, palette, 16-bit, alpha) to RGB; alpha is composited over white,
    /// which is what an empty slide background looks like.
    public static func decode(_ data: Data, path: String = "<memory>") throws -> RGBImage {
        var image = png_image()
        image.version = cpng_image_version()
        let began = data.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard began != 0 else { throw ImageCodecError.decodeFailed(path: path, reason: message(of: image)) }
        image.format = cpng_format_rgb()
        var background = png_color(red: 255, green: 255, blue: 255)
        let width = Int(image.width), height = Int(image.height)
        do { try RGBImage.checkDeclaredSize(width: width, height: height, path: path) } catch {
            png_image_free(&image)
            throw error
        }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let finished = pixels.withUnsafeMutableBytes { out in
            png_image_finish_read(&image, &background, out.baseAddress, 0, nil)
        }
        guard finished != 0 else {
            png_image_free(&image)
            throw ImageCodecError.decodeFailed(path: path, reason: message(of: image))
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    private static func message(of image: png_image) -> String {
        withUnsafeBytes(of: image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

/// JPEG through libjpeg-turbo's TurboJPEG API (errors are return codes, not longjmp).
public enum JPEG {
    public static func encode(_ image: RGBImage, quality: Int = 90) throws -> Data {
        guard let handle = tjInitCompress() else { throw ImageCodecError.encodeFailed(reason: "tjInitCompress failed") }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let status = image.pixels.withUnsafeBufferPointer { px in
            tjCompress2(handle, px.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_RGB.rawValue),
                        &buffer, &size, Int32(TJSAMP_444.rawValue), Int32(quality), Int32(TJFLAG_ACCURATEDCT))
        }
        defer { if let buffer { tjFree(buffer) } }
        guard status == 0, let buffer else { throw ImageCodecError.encodeFailed(reason: String(cString: tjGetErrorStr2(handle))) }
        return Data(bytes: buffer, count: Int(size))
    }

    public static func decode(_ data: Data, path: String = "<memory>") throws -> RGBImage {
        guard let handle = tjInitDecompress() else { throw ImageCodecError.decodeFailed(path: path, reason: "tjInitDecompress failed") }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let header = data.withUnsafeBytes {
            tjDecompressHeader3(handle, $0.bindMemory(to: UInt8.self).baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
        }
        guard header == 0, width > 0, height > 0 else {
            throw ImageCodecError.decodeFailed(path: path, reason: String(cString: tjGetErrorStr2(handle)))
        }
        try RGBImage.checkDeclaredSize(width: Int(width), height: Int(height), path: path)
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
        let status = data.withUnsafeBytes { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src.bindMemory(to: UInt8.self).baseAddress, UInt(src.count), dst.baseAddress,
                              width, 0, height, Int32(TJPF_RGB.rawValue), Int32(TJFLAG_ACCURATEDCT))
            }
        }
        guard status == 0 else { throw ImageCodecError.decodeFailed(path: path, reason: String(cString: tjGetErrorStr2(handle))) }
        return RGBImage(width: Int(width), height: Int(height), pixels: pixels)
    }
}

extension RGBImage {
    /// Reads a PNG or JPEG file, chosen by its contents rather than its name.
    public static func read(path: String) throws -> RGBImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageCodecError.decodeFailed(path: path, reason: "cannot read file")
        }
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try PNG.decode(data, path: path) }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return try JPEG.decode(data, path: path) }
        if data.starts(with: [0x49, 0x49]) || data.starts(with: [0x4D, 0x4D]) { return try TIFFPicture.decode(path: path) }
        throw ImageCodecError.unsupportedFormat(path: path)
    }

    public func encoded(as format: ImageFormat, jpegQuality: Int = 90) throws -> Data {
        switch format {
        case .png: return try PNG.encode(self)
        case .jpeg: return try JPEG.encode(self, quality: jpegQuality)
        }
    }

    /// Writes atomically; the format follows `format` or else the file extension.
    public func write(to path: String, format: ImageFormat? = nil, jpegQuality: Int = 90) throws {
        guard let format = format ?? ImageFormat(path: path) else { throw ImageCodecError.unsupportedFormat(path: path) }
        try AtomicFile.write(try encoded(as: format, jpegQuality: jpegQuality), to: path)
    }
}
