import Foundation
import Imaging
import SlideIO
import Tissue

enum MaskCommand: Command {
    static let name = "mask"
    static let summary = "draw the tissue mask over a slide thumbnail (QC picture)"
    static let usage = """
    Usage: wsi mask SLIDE --out qc.png [--mask-out mask.png] [--thumbnail-size 1024] [--threshold N]

    Segments tissue on the thumbnail (saturation, median blur, Otsu, closing, hole filling, small-
    component removal) and writes the thumbnail with the tissue outline; glass is dimmed.
      --mask-out PATH        also write the binary mask as a PNG (white = tissue)
      --thumbnail-size PX    long side of the thumbnail the mask is computed on (default 1024)
      --threshold N          fixed saturation threshold 0...255 instead of Otsu
      --assume-mpp X         microns per pixel for area limits when the slide records none
    """

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        guard let out = try arguments.string("out") else { throw UsageError("--out PATH is required") }
        let maskOut = try arguments.string("mask-out")
        var config = TissueMaskConfig()
        config.thumbnailLongSide = try arguments.int("thumbnail-size", range: 64...16384) ?? config.thumbnailLongSide
        if let threshold = try arguments.int("threshold", range: 0...255) { config.threshold = .fixed(UInt8(threshold)) }
        let assumed = try arguments.double("assume-mpp", range: 0.01...1000)
        let paths = try arguments.positionals()
        guard paths.count == 1 else { throw UsageError("expected exactly one SLIDE") }
        let slide = try Slide(path: paths[0])
        if let assumed { slide.assumeMicronsPerPixel(assumed) }
        let (mask, thumbnail) = try TissueMask.compute(slide: slide, config: config)
        try QCPicture.render(thumbnail: thumbnail, mask: mask).write(to: out)
        if let maskOut {
            let image = RGBImage(width: mask.width, height: mask.height, pixels: mask.bits.flatMap { $0 == 0 ? [0, 0, 0] : [255, 255, 255] as [UInt8] })
            try image.write(to: maskOut)
        }
        print("\(slide.path): tissue \(String(format: "%.1f", mask.tissueFraction * 100))% of the slide, "
              + "saturation threshold \(mask.threshold), mask \(mask.width)x\(mask.height) → \(out)")
        return 0
    }
}
