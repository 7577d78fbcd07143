import Imaging

/// Why a tile that the mask called tissue was thrown away after reading its pixels.
public enum TileRejection: String, Sendable, CaseIterable {
    case white   // mostly glass the thumbnail mask blurred over
    case black   // scanner edge, dirt, or an out-of-slide region
    case pen     // marker ink dominates
}

/// Per-tile colour statistics in 0...1.
public struct ColourStatistics: Equatable, Sendable {
    /// Fraction of all pixels that are glass.
    public var white: Double
    /// Fraction of all pixels that are black.
    public var black: Double
    /// Fraction of the non-glass pixels that are marker ink: ink over a mostly empty tile is
    /// still the tile's content.
    public var pen: Double
}

/// Colour thresholds for tile rejection; defaults were checked against histolab's labelled tiles.
public struct TileQualityConfig: Equatable, Sendable {
    /// A pixel whose darkest channel is above this is glass.
    public var whiteLevel: UInt8 = 215
    public var maxWhiteFraction = 0.85
    /// A pixel whose brightest channel is below this is black.
    public var blackLevel: UInt8 = 40
    public var maxBlackFraction = 0.5
    public var maxPenFraction = 0.5
    public var enabled = true

    public init() {}
}

public enum TileQuality {
    public static func statistics(_ image: RGBImage, config: TileQualityConfig = TileQualityConfig()) -> ColourStatistics {
        var white = 0, black = 0, pen = 0
        image.pixels.withUnsafeBufferPointer { px in
            for i in stride(from: 0, to: px.count, by: 3) {
                let r = px[i], g = px[i + 1], b = px[i + 2]
                let lo = min(r, g, b), hi = max(r, g, b)
                if lo > config.whiteLevel { white += 1; continue }
                if hi < config.blackLevel { black += 1; continue }
                if isPen(r, g, b, lo: lo, hi: hi) { pen += 1 }
            }
        }
        let n = Double(max(1, image.width * image.height))
        let nonGlass = Double(max(1, image.width * image.height - white))
        return ColourStatistics(white: Double(white) / n, black: Double(black) / n, pen: Double(pen) / nonGlass)
    }

    /// H&E stains are pink (eosin) to violet (haematoxylin): red and blue together above green.
    /// Marker inks break that: green and blue-green ink raise green, blue ink has blue far above
    /// red, and red ink has both green and blue far below red.
    @inline(__always)
    static func isPen(_ r: UInt8, _ g: UInt8, _ b: UInt8, lo: UInt8, hi: UInt8) -> Bool {
        let r = Int(r), g = Int(g), b = Int(b)
        guard Int(hi) - Int(lo) > 30 else { return false }  // greys are never ink
        if g > r + 10 && g >= b - 20 { return true }           // green / teal ink
        if b > r + 60 && b > g + 40 { return true }            // blue ink
        if r - g > 30 && b - g < 18 { return true }            // red ink: eosin keeps blue well above green
        return false
    }

    public static func assess(_ image: RGBImage, config: TileQualityConfig = TileQualityConfig()) -> (ColourStatistics, TileRejection?) {
        let stats = statistics(image, config: config)
        guard config.enabled else { return (stats, nil) }
        if stats.white > config.maxWhiteFraction { return (stats, .white) }
        if stats.black > config.maxBlackFraction { return (stats, .black) }
        if stats.pen > config.maxPenFraction { return (stats, .pen) }
        return (stats, nil)
    }
}
