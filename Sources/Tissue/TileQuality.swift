import Imaging

/// Why a tile that the mask called tissue was thrown away after reading its pixels.
public enum TileRejection: String, Sendable, CaseIterable {
    case white   // mostly glass the thumbnail mask blurred over
    case black   // scanner edge, dirt, or an out-of-slide region
    case ink     // marker ink: a tile on tissue only with ink counted, or one tenth ink
}

/// Per-tile colour statistics in 0...1.
public struct ColourStatistics: Equatable, Sendable {
    /// Fraction of all pixels that are glass.
    public var white: Double
    /// Fraction of all pixels that are black.
    public var black: Double
    /// Fraction of the non-glass pixels that are marker ink: ink over a mostly empty tile is
    /// still the tile's content.
    public var ink: Double
}

/// Colour thresholds for tile rejection; defaults were checked against histolab's labelled tiles.
public struct TileQualityConfig: Equatable, Sendable {
    /// A pixel whose darkest channel is above this is glass.
    public var whiteLevel: UInt8 = 215
    public var maxWhiteFraction = 0.85
    /// A pixel whose brightest channel is below this is black.
    public var blackLevel: UInt8 = 40
    public var maxBlackFraction = 0.5
    /// Ink in a kept tile teaches a model the marker; the ink rules are strict enough that
    /// clean H&E tiles of histolab's set stay under 0.08.
    public var maxInkFraction = 0.1
    public var enabled = true

    public init() {}
}

public enum TileQuality {
    public static func statistics(_ image: RGBImage, config: TileQualityConfig = TileQualityConfig()) -> ColourStatistics {
        var white = 0, black = 0, ink = 0
        image.pixels.withUnsafeBufferPointer { px in
            for i in stride(from: 0, to: px.count, by: 3) {
                let r = px[i], g = px[i + 1], b = px[i + 2]
                let lo = min(r, g, b), hi = max(r, g, b)
                if lo > config.whiteLevel { white += 1; continue }
                if hi < config.blackLevel { black += 1; continue }
                if isInk(r, g, b) { ink += 1 }
            }
        }
        let n = Double(max(1, image.width * image.height))
        let nonGlass = Double(max(1, image.width * image.height - white))
        return ColourStatistics(white: Double(white) / n, black: Double(black) / n, ink: Double(ink) / nonGlass)
    }

    /// H&E stains are pink (eosin) to violet (haematoxylin): red and blue together above green.
    /// Marker inks break that: green and blue-green ink raise green above red, blue ink puts blue
    /// far above both, red ink leaves green and blue both far below red and close together
    /// (eosin keeps blue above green, by 0.15 of red or more on histolab's densest collagen).
    /// The rules favour precision: translucent red smears that match eosin pixel for pixel are
    /// missed rather than clean tissue flagged. Near-white and grey pixels are never ink.
    @inline(__always)
    public static func isInk(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> Bool {
        let (r, g, b) = (Int(r), Int(g), Int(b))
        let lo = min(r, g, b), hi = max(r, g, b)
        guard hi - lo > 40, lo < 200 else { return false }
        if g > r + 30 && g >= b - 20 { return true }                                   // green / teal
        if b > r + 60 && b > g + 40 { return true }                                    // blue
        return r > 60 && g * 100 < r * 45 && b * 100 < r * 60 && (b - g) * 100 < r * 12  // red
    }

    public static func assess(_ image: RGBImage, config: TileQualityConfig = TileQualityConfig()) -> (ColourStatistics, TileRejection?) {
        let stats = statistics(image, config: config)
        guard config.enabled else { return (stats, nil) }
        if stats.white > config.maxWhiteFraction { return (stats, .white) }
        if stats.black > config.maxBlackFraction { return (stats, .black) }
        if stats.ink > config.maxInkFraction { return (stats, .ink) }
        return (stats, nil)
    }
}
