import Imaging
import SlideIO

/// How the saturation threshold separating tissue from glass is chosen.
public enum SaturationThreshold: Equatable, Sendable {
    /// Otsu's threshold on the blurred saturation histogram, but never below `minimum`: on a slide
    /// that is nearly all glass Otsu would otherwise split sensor noise and invent tissue.
    case otsu(minimum: UInt8)
    case fixed(UInt8)
}

/// Parameters of the thumbnail tissue segmentation. Defaults follow CLAM's segmentation
/// (saturation, median 7, closing, area filters) with areas in µm² instead of CLAM's
/// "reference patches" so they mean the same at every magnification.
public struct TissueMaskConfig: Equatable, Sendable {
    /// Long side of the thumbnail the mask is computed on, in pixels.
    public var thumbnailLongSide = 1024
    public var threshold = SaturationThreshold.otsu(minimum: 20)
    /// Odd kernel size of the median blur on the saturation channel.
    public var medianKernel = 7
    /// Radius (thumbnail pixels) of the square closing that joins nearby tissue fragments.
    public var closingRadius = 2
    /// Holes inside tissue smaller than this are filled (lumen and cracks stay tissue).
    public var maxHoleAreaMicrons2 = 10_000.0
    /// Tissue components smaller than this are dropped (dust, debris).
    public var minTissueAreaMicrons2 = 20_000.0
    /// Pixel size used for the area limits when the slide records none; 0.5 µm/px is a 20x scan.
    public var fallbackMicronsPerPixel = 0.5

    /// The level-0 resolution the area limits are measured with.
    public func areaMicronsPerPixel(_ recorded: Double?) -> Double { recorded ?? fallbackMicronsPerPixel }

    public init() {}
}

/// A binary tissue mask over the slide, at thumbnail resolution, with O(1) tissue fraction of
/// any level-0 rectangle (summed-area table).
public struct TissueMask: Sendable {
    public let width: Int
    public let height: Int
    /// Level-0 pixels per mask pixel along x and y.
    public let scaleX: Double
    public let scaleY: Double
    /// 1 for tissue, 0 for background, row-major.
    public let bits: [UInt8]
    /// The saturation threshold that was applied (after Otsu, if chosen).
    public let threshold: UInt8
    private let integral: [Int32]

    public init(width: Int, height: Int, scaleX: Double, scaleY: Double, bits: [UInt8], threshold: UInt8) {
        precondition(bits.count == width * height)
        self.width = width
        self.height = height
        self.scaleX = scaleX
        self.scaleY = scaleY
        self.bits = bits
        self.threshold = threshold
        var integral = [Int32](repeating: 0, count: (width + 1) * (height + 1))
        for y in 0..<height {
            var rowSum: Int32 = 0
            for x in 0..<width {
                rowSum += Int32(bits[y * width + x])
                integral[(y + 1) * (width + 1) + x + 1] = integral[y * (width + 1) + x + 1] + rowSum
            }
        }
        self.integral = integral
    }

    public var tissueFraction: Double {
        bits.isEmpty ? 0 : Double(integral[integral.count - 1]) / Double(bits.count)
    }

    /// Fraction of the level-0 rectangle covered by tissue; the part outside the slide counts as glass.
    public func tissueFraction(x: Int, y: Int, width w: Int, height h: Int) -> Double {
        guard w > 0, h > 0 else { return 0 }
        // Mask pixels are weighted by how much of them the rectangle covers, so small tiles on a
        // coarse mask still get a smooth fraction.
        let fx0 = Double(x) / scaleX, fx1 = Double(x + w) / scaleX
        let fy0 = Double(y) / scaleY, fy1 = Double(y + h) / scaleY
        let area = (fx1 - fx0) * (fy1 - fy0)
        var covered = 0.0
        let ix0 = max(0, Int(fx0.rounded(.down))), ix1 = min(width, Int(fx1.rounded(.up)))
        let iy0 = max(0, Int(fy0.rounded(.down))), iy1 = min(height, Int(fy1.rounded(.up)))
        guard ix0 < ix1, iy0 < iy1 else { return 0 }
        // Interior block through the summed-area table, borders weighted pixel by pixel.
        let cx0 = min(ix1, max(ix0, Int(fx0.rounded(.up)))), cx1 = max(cx0, min(ix1, Int(fx1.rounded(.down))))
        let cy0 = min(iy1, max(iy0, Int(fy0.rounded(.up)))), cy1 = max(cy0, min(iy1, Int(fy1.rounded(.down))))
        covered += Double(sum(x0: cx0, y0: cy0, x1: cx1, y1: cy1))
        for py in iy0..<iy1 {
            let wy = min(fy1, Double(py + 1)) - max(fy0, Double(py))
            for px in ix0..<ix1 where !(px >= cx0 && px < cx1 && py >= cy0 && py < cy1) {
                guard bits[py * width + px] != 0 else { continue }
                let wx = min(fx1, Double(px + 1)) - max(fx0, Double(px))
                covered += wx * wy
            }
        }
        return min(1, covered / area)
    }

    private func sum(x0: Int, y0: Int, x1: Int, y1: Int) -> Int32 {
        guard x1 > x0, y1 > y0 else { return 0 }
        let w = width + 1
        return integral[y1 * w + x1] - integral[y0 * w + x1] - integral[y1 * w + x0] + integral[y0 * w + x0]
    }
}

extension TissueMask {
    /// Segments tissue on the slide's thumbnail; returns the mask and the thumbnail it was made from.
    /// `micronsPerPixel` sizes the area limits: the slide's resolution as the caller decided it,
    /// or nil for the configured fallback.
    public static func compute(slide: Slide, micronsPerPixel: Double?,
                               config: TissueMaskConfig = TissueMaskConfig()) throws -> (mask: TissueMask, thumbnail: RGBImage) {
        let thumbnail = try slide.thumbnail(maxSize: config.thumbnailLongSide)
        let (w, h) = slide.dimensions
        let mpp = config.areaMicronsPerPixel(micronsPerPixel)
        let mask = compute(thumbnail: thumbnail, scaleX: Double(w) / Double(thumbnail.width),
                           scaleY: Double(h) / Double(thumbnail.height), micronsPerPixel: mpp, config: config)
        return (mask, thumbnail)
    }

    /// The segmentation itself, on an RGB thumbnail whose pixels are `scaleX`×`scaleY` level-0 pixels.
    public static func compute(thumbnail: RGBImage, scaleX: Double, scaleY: Double, micronsPerPixel: Double,
                               config: TissueMaskConfig) -> TissueMask {
        let w = thumbnail.width, h = thumbnail.height
        let saturation = MaskOps.medianBlur(MaskOps.saturation(thumbnail), width: w, height: h, kernel: config.medianKernel)
        let threshold: UInt8
        switch config.threshold {
        case let .fixed(t): threshold = t
        case let .otsu(minimum): threshold = max(minimum, MaskOps.otsuThreshold(saturation))
        }
        var bits = saturation.map { $0 > threshold ? UInt8(1) : 0 }
        bits = MaskOps.close(bits, width: w, height: h, radius: config.closingRadius)
        let pixelArea = scaleX * micronsPerPixel * scaleY * micronsPerPixel
        bits = MaskOps.fillHoles(bits, width: w, height: h, maxArea: Int(config.maxHoleAreaMicrons2 / pixelArea))
        bits = MaskOps.removeSmallComponents(bits, width: w, height: h, minArea: Int((config.minTissueAreaMicrons2 / pixelArea).rounded(.up)))
        return TissueMask(width: w, height: h, scaleX: scaleX, scaleY: scaleY, bits: bits, threshold: threshold)
    }
}
