import CTIFF
import Foundation

/// Single-image TIFF pictures (labelled tile sets such as Kather 2016 ship them), decoded whole
/// through libtiff's RGBA interface: any photometric, compression or bit depth it supports.
/// Whole-slide TIFFs are OpenSlide's; this refuses anything larger than a big tile.
enum TIFFPicture {
    static func decode(path: String) throws -> RGBImage {
        ctiff_silence()
        guard let tif = TIFFOpen(path, "r") else { throw ImageCodecError.decodeFailed(path: path, reason: "libtiff cannot open it") }
        defer { TIFFClose(tif) }
        var width: UInt32 = 0, height: UInt32 = 0
        guard ctiff_dimensions(tif, &width, &height) == 1, width > 0, height > 0 else {
            throw ImageCodecError.decodeFailed(path: path, reason: "no image dimensions")
        }
        let count = Int(width) * Int(height)
        try RGBImage.checkDeclaredSize(width: Int(width), height: Int(height), path: path)
        var raster = [UInt32](repeating: 0, count: count)
        let ok = raster.withUnsafeMutableBufferPointer {
            TIFFReadRGBAImageOriented(tif, width, height, $0.baseAddress, ORIENTATION_TOPLEFT, 0)
        }
        guard ok == 1 else { throw ImageCodecError.decodeFailed(path: path, reason: "libtiff cannot decode it") }
        // ABGR packed with red in the low byte; transparent pixels over white, as glass.
        var pixels = [UInt8](repeating: 0, count: count * 3)
        for i in 0..<count {
            let value = raster[i]
            let alpha = Int(value >> 24)
            for c in 0..<3 {
                let channel = Int((value >> (8 * UInt32(c))) & 0xFF)
                pixels[i * 3 + c] = UInt8((channel * alpha + 255 * (255 - alpha)) / 255)
            }
        }
        return RGBImage(width: Int(width), height: Int(height), pixels: pixels)
    }
}
