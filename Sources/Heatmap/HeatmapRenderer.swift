import Foundation
import Imaging

public struct HeatmapStyle: Sendable {
    public var colormap = Colormap.viridis
    /// Opacity of the colours over the thumbnail, 0...1.
    public var alpha = 0.5
    /// Gaussian smoothing of the grid, σ in cells; 0 keeps the cells as they are.
    public var smoothingSigma = 0.0
    /// Bilinear upsampling of the grid (true) or square cells (false).
    public var interpolate = true
    /// Scores mapped to the ends of the colormap; nil uses the grid's own range.
    public var range: ClosedRange<Float>? = 0...1

    public init() {}
}

/// What a heatmap picture says beside its colours: whose slide, what the colours measure, and
/// the slide's verdict when there is one.
public struct HeatmapCaption: Sendable {
    public var slide: String
    /// The colour bar's label: the score and its scale ("P(TUMOR), 0 TO 1").
    public var measure: String
    /// "PREDICTED TUMOR, P 0.93" (MIL) or "MEAN P(TUMOR) 0.34 OF 812 TILES"; nil when unknown.
    public var verdict: String?

    public init(slide: String, measure: String, verdict: String? = nil) {
        (self.slide, self.measure, self.verdict) = (slide, measure, verdict)
    }
}

/// Draws score grids over slide thumbnails, with a colour-bar legend.
public enum HeatmapRenderer {
    /// The grid's value at thumbnail pixel (`x`, `y`), or nil where no tissue was scored.
    static func sample(_ grid: ScoreGrid, x: Int, y: Int, pixelSize: (Double, Double), interpolate: Bool) -> Float? {
        // Thumbnail pixel centre in cell units.
        let gx = (Double(x) + 0.5) * pixelSize.0 / grid.cellSize, gy = (Double(y) + 0.5) * pixelSize.1 / grid.cellSize
        let cx = min(grid.columns - 1, Int(gx)), cy = min(grid.rows - 1, Int(gy))
        let nearest = grid[cx, cy]
        guard nearest.isFinite else { return nil }
        guard interpolate else { return nearest }
        // Bilinear over cell centres, renormalised over the neighbours that hold a score.
        let fx = gx - 0.5, fy = gy - 0.5
        let x0 = Int(fx.rounded(.down)), y0 = Int(fy.rounded(.down))
        let tx = fx - Double(x0), ty = fy - Double(y0)
        var sum = 0.0, weight = 0.0
        for (dx, dy, w) in [(0, 0, (1 - tx) * (1 - ty)), (1, 0, tx * (1 - ty)), (0, 1, (1 - tx) * ty), (1, 1, tx * ty)] {
            let c = x0 + dx, r = y0 + dy
            guard c >= 0, r >= 0, c < grid.columns, r < grid.rows, w > 0 else { continue }
            let v = grid[c, r]
            if v.isFinite { sum += w * Double(v); weight += w }
        }
        return weight > 0 ? Float(sum / weight) : nearest
    }

    static func normalised(_ v: Float, _ range: ClosedRange<Float>) -> Double {
        range.upperBound > range.lowerBound ? Double((v - range.lowerBound) / (range.upperBound - range.lowerBound)) : 0.5
    }

    /// Thumbnail with the scores blended in and a legend to the right.
    /// `slideWidth`×`slideHeight` are level-0 dimensions the thumbnail shows.
    public static func render(grid: ScoreGrid, thumbnail: RGBImage, slideWidth: Int, slideHeight: Int,
                              caption: HeatmapCaption, style: HeatmapStyle) -> RGBImage {
        let grid = grid.smoothed(sigma: style.smoothingSigma)
        let range = style.range ?? grid.range ?? (0...1)
        let pixelSize = (Double(slideWidth) / Double(thumbnail.width), Double(slideHeight) / Double(thumbnail.height))
        // Wide enough for every line in full (up to 40 characters each) and the tick labels.
        let lines = [(caption.slide, 2), (caption.verdict ?? "", 1), (caption.measure, 1)]
        let legendWidth = max(150, lines.map { BitmapFont.width(String($0.0.prefix(40)), scale: $0.1) }.max()! + 32)
        let height = max(thumbnail.height, 284)
        var canvas = RGBImage(width: thumbnail.width + legendWidth, height: height)
        let alpha = min(1, max(0, style.alpha))
        for y in 0..<thumbnail.height {
            for x in 0..<thumbnail.width {
                var pixel = thumbnail[x, y]
                if let v = sample(grid, x: x, y: y, pixelSize: pixelSize, interpolate: style.interpolate) {
                    let c = style.colormap.colour(normalised(v, range))
                    func blend(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8((Double(a) * (1 - alpha) + Double(b) * alpha).rounded()) }
                    pixel = (blend(pixel.0, c.0), blend(pixel.1, c.1), blend(pixel.2, c.2))
                }
                canvas[x, y] = pixel
            }
        }
        drawLegend(into: &canvas, left: thumbnail.width + 16, caption: caption, range: range, colormap: style.colormap)
        return canvas
    }

    /// The slide's name, its verdict, the measure, then a vertical colour bar (maximum at the top)
    /// with three tick labels.
    static func drawLegend(into canvas: inout RGBImage, left: Int, caption: HeatmapCaption, range: ClosedRange<Float>, colormap: Colormap) {
        let scale = 2, top = 64, barHeight = 200, barWidth = 24
        func fitted(_ text: String, _ scale: Int) -> String {
            let room = (canvas.width - left - 4) / ((BitmapFont.glyphWidth + 1) * scale)
            return text.count > room ? String(text.prefix(max(1, room - 1))) + "." : text
        }
        BitmapFont.draw(fitted(caption.slide, 2), into: &canvas, x: left, y: 8, scale: 2)
        if let verdict = caption.verdict { BitmapFont.draw(fitted(verdict, 1), into: &canvas, x: left, y: 30, scale: 1, colour: (150, 20, 20)) }
        BitmapFont.draw(fitted(caption.measure, 1), into: &canvas, x: left, y: 46, scale: 1)
        for row in 0..<barHeight {
            let c = colormap.colour(1 - Double(row) / Double(barHeight - 1))
            for column in 0..<barWidth { canvas[left + column, top + row] = c }
        }
        for column in -1...barWidth { canvas[left + column, top - 1] = (0, 0, 0); canvas[left + column, top + barHeight] = (0, 0, 0) }
        for row in -1...barHeight { canvas[left - 1, top + row] = (0, 0, 0); canvas[left + barWidth, top + row] = (0, 0, 0) }
        let middle = (range.lowerBound + range.upperBound) / 2
        for (value, row) in [(range.upperBound, 0), (middle, barHeight / 2), (range.lowerBound, barHeight - 1)] {
            for column in barWidth..<(barWidth + 5) { canvas[left + column, top + row] = (0, 0, 0) }
            BitmapFont.draw(String(format: "%.2f", value), into: &canvas, x: left + barWidth + 8, y: top + row - 7, scale: scale)
        }
    }

    /// The grid alone, one square of `cellPixels` per cell, transparent where there is no tissue (RGBA PNG).
    public static func rawGridPNG(grid: ScoreGrid, cellPixels: Int, style: HeatmapStyle) throws -> Data {
        let range = style.range ?? grid.range ?? (0...1)
        let w = grid.columns * cellPixels, h = grid.rows * cellPixels
        var rgba = [UInt8](repeating: 0, count: w * h * 4)
        for r in 0..<grid.rows {
            for c in 0..<grid.columns {
                let v = grid[c, r]
                guard v.isFinite else { continue }
                let colour = style.colormap.colour(normalised(v, range))
                for y in (r * cellPixels)..<((r + 1) * cellPixels) {
                    for x in (c * cellPixels)..<((c + 1) * cellPixels) {
                        let o = (y * w + x) * 4
                        rgba[o] = colour.0; rgba[o + 1] = colour.1; rgba[o + 2] = colour.2; rgba[o + 3] = 255
                    }
                }
            }
        }
        return try PNG.encodeRGBA(rgba, width: w, height: h)
    }
}
