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
    /// Below this share of glass in the thumbnail, the field is taken as all tissue (a biopsy
    /// scanned edge to edge, or a tile cut from one): see `saturationThreshold`.
    public var minimumGlassFraction = 0.03
    /// Pixel size used for the area limits when the slide records none; 0.5 µm/px is a 20x scan.
    public var fallbackMicronsPerPixel = 0.5

    /// The level-0 resolution the area limits are measured with.
    public func areaMicronsPerPixel(_ recorded: Double?) -> Double { recorded ?? fallbackMicronsPerPixel }

    public init() {}
}

/// A binary map over the slide at thumbnail resolution, with the area-weighted fraction of any
/// level-0 rectangle it covers in O(1) plus the rectangle's border (summed-area table).
struct CoverageMap: Sendable {
    let width: Int
    let height: Int
    let scaleX: Double
    let scaleY: Double
    let bits: [UInt8]
    private let integral: [Int32]

    init(width: Int, height: Int, scaleX: Double, scaleY: Double, bits: [UInt8]) {
        precondition(bits.count == width * height)
        (self.width, self.height, self.scaleX, self.scaleY, self.bits) = (width, height, scaleX, scaleY, bits)
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

    var coveredFraction: Double { bits.isEmpty ? 0 : Double(integral[integral.count - 1]) / Double(bits.count) }

    /// Fraction of the level-0 rectangle covered; the part outside the slide counts as uncovered.
    func fraction(x: Int, y: Int, width w: Int, height h: Int) -> Double {
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

/// Where the slide has tissue, and apart from it where marker ink lies, at thumbnail resolution.
public struct TissueMask: Sendable {
    public var width: Int { tissue.width }
    public var height: Int { tissue.height }
    /// Level-0 pixels per mask pixel along x and y.
    public var scaleX: Double { tissue.scaleX }
    public var scaleY: Double { tissue.scaleY }
    /// 1 for tissue, 0 for background and ink, row-major.
    public var bits: [UInt8] { tissue.bits }
    /// 1 for marker ink (with a rim of two mask pixels, where ink fades into what it covers).
    public var inkBits: [UInt8] { ink.bits }
    /// The saturation threshold that was applied (after Otsu, if chosen).
    public let threshold: UInt8
    private let tissue: CoverageMap
    private let ink: CoverageMap

    public init(width: Int, height: Int, scaleX: Double, scaleY: Double, bits: [UInt8], inkBits: [UInt8]? = nil, threshold: UInt8) {
        tissue = CoverageMap(width: width, height: height, scaleX: scaleX, scaleY: scaleY, bits: bits)
        ink = CoverageMap(width: width, height: height, scaleX: scaleX, scaleY: scaleY,
                          bits: inkBits ?? [UInt8](repeating: 0, count: width * height))
        self.threshold = threshold
    }

    public var tissueFraction: Double { tissue.coveredFraction }
    public var inkFraction: Double { ink.coveredFraction }

    /// Fraction of the level-0 rectangle covered by tissue; the part outside the slide counts as glass.
    public func tissueFraction(x: Int, y: Int, width w: Int, height h: Int) -> Double { tissue.fraction(x: x, y: y, width: w, height: h) }

    /// Fraction of the level-0 rectangle under marker ink.
    public func inkFraction(x: Int, y: Int, width w: Int, height h: Int) -> Double { ink.fraction(x: x, y: y, width: w, height: h) }
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
        let ink = MaskOps.dilate(MaskOps.inkPixels(thumbnail), width: w, height: h, radius: 2)
        let threshold = saturationThreshold(saturation, ink: ink, thumbnail: thumbnail, config: config)
        // Ink is saturated and passes the threshold; it is not tissue, and what it covers is unseen.
        // It is taken out before closing, so the outline stays smooth (and its rings simple); a
        // speck of ink inside tissue is then filled as a small hole, and the tile check catches it.
        var bits = saturation.indices.map { saturation[$0] > threshold && ink[$0] == 0 ? UInt8(1) : 0 }
        bits = MaskOps.close(bits, width: w, height: h, radius: config.closingRadius)
        let pixelArea = scaleX * micronsPerPixel * scaleY * micronsPerPixel
        bits = MaskOps.fillHoles(bits, width: w, height: h, maxArea: Int(config.maxHoleAreaMicrons2 / pixelArea))
        bits = MaskOps.removeSmallComponents(bits, width: w, height: h, minArea: Int((config.minTissueAreaMicrons2 / pixelArea).rounded(.up)))
        return TissueMask(width: w, height: h, scaleX: scaleX, scaleY: scaleY, bits: bits, inkBits: ink, threshold: threshold)
    }

    /// Otsu's threshold over the pixels that are not ink (ink's strong saturation would
    /// otherwise split ink from everything else and lose the tissue). A field with almost no
    /// glass is all tissue: Otsu would split the tissue itself in two, so the minimum is used.
    static func saturationThreshold(_ saturation: [UInt8], ink: [UInt8], thumbnail: RGBImage, config: TissueMaskConfig) -> UInt8 {
        switch config.threshold {
        case let .fixed(t): return t
        case let .otsu(minimum):
            let glass = stride(from: 0, to: thumbnail.pixels.count, by: 3).filter { i in
                min(thumbnail.pixels[i], thumbnail.pixels[i + 1], thumbnail.pixels[i + 2]) > TileQualityConfig().whiteLevel
            }.count
            guard Double(glass) >= config.minimumGlassFraction * Double(max(1, saturation.count)) else { return minimum }
            let values = saturation.indices.filter { ink[$0] == 0 }.map { saturation[$0] }
            return max(minimum, MaskOps.otsuThreshold(values.isEmpty ? saturation : values))
        }
    }
}
