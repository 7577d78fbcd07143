import Foundation
import Imaging

/// A heatmap at full resolution as a pyramidal TIFF on the slide's own pixel grid (scaled by
/// `downsample`), for OpenSlide and for QuPath as an overlay image. Rendered one tile row at a time.
public enum HeatmapTIFF {
    public enum Mode: String, CaseIterable, Sendable {
        /// The colours blended over the slide's pixels (RGB, JPEG or deflate).
        case overSlide = "over-slide"
        /// The colours with alpha (transparent where there is no tissue score), for overlays.
        case rgba
    }

    /// Slide pixels per TIFF pixel when none is asked for: the whole slide up to 4,096 pixels a
    /// side (a pyramid of five levels or more on a real slide), never coarser than 8 pixels a tile.
    public static func defaultDownsample(slideWidth: Int, slideHeight: Int, tileStride: Double) -> Double {
        max(1, min(tileStride / 8, Double(max(slideWidth, slideHeight)) / 4096))
    }

    /// `background(x0, y0, width, rows, downsample)` returns the slide's pixels of a band of the
    /// output level (level-0 origin x0, y0), for `.overSlide`.
    @discardableResult
    public static func write(grid: ScoreGrid, style: HeatmapStyle, slideWidth: Int, slideHeight: Int, downsample: Double, mode: Mode,
                             compression: TIFFCompression, micronsPerPixel: Double?, title: String, to path: String,
                             background: ((Int, Int, Int, Int, Double) throws -> RGBImage)?) throws -> [(width: Int, height: Int)] {
        let grid = grid.smoothed(sigma: style.smoothingSigma)
        let range = style.range ?? grid.range ?? (0...1)
        let alpha = min(1, max(0, style.alpha))
        let width = max(1, Int((Double(slideWidth) / downsample).rounded(.up))), height = max(1, Int((Double(slideHeight) / downsample).rounded(.up)))
        let channels = mode == .rgba ? 4 : 3
        let painter = BandPainter(grid: grid, range: range, alpha: alpha, palette: (0...255).map { style.colormap.colour(Double($0) / 255) },
                                  interpolate: style.interpolate, channels: channels)
        return try PyramidalTIFF.write(path: path, width: width, height: height, channels: channels, compression: compression,
                                       micronsPerPixel: micronsPerPixel.map { $0 * downsample }, slidePixelsPerPixel: downsample,
                                       description: "wsi heatmap: \(title); downsample \(downsample) of the slide; range \(range.lowerBound)...\(range.upperBound)") {
            _, levelWidth, y0, rows in
            let scale = downsample * Double(width) / Double(levelWidth)  // level-0 pixels per pixel of this level
            var band = [UInt8](repeating: 255, count: levelWidth * rows * channels)
            if mode == .overSlide, let background {
                let under = try background(0, Int(Double(y0) * scale), levelWidth, rows, scale)
                for i in 0..<(levelWidth * rows) { for c in 0..<3 { band[i * 3 + c] = under.pixels[i * 3 + c] } }
            }
            painter.paint(&band, levelWidth: levelWidth, y0: y0, rows: rows, scale: scale)
            return band
        }
    }
}

/// Colours one band of a heatmap level: scores sampled from the grid (bilinear between tile
/// centres, as `HeatmapRenderer.sample`), blended over the slide's pixels or written as RGBA.
private struct BandPainter {
    let grid: ScoreGrid
    let range: ClosedRange<Float>
    let alpha: Double
    let palette: [(UInt8, UInt8, UInt8)]
    let interpolate: Bool
    let channels: Int

    /// `scale`: level-0 pixels per pixel of the band's level.
    func paint(_ band: inout [UInt8], levelWidth: Int, y0: Int, rows: Int, scale: Double) {
        // The bilinear sampling of `HeatmapRenderer.sample`, with the per-column terms computed
        // once per band: this loop runs for every pixel of every level.
        let columns = (0..<levelWidth).map { x -> (nearest: Int, left: Int, t: Double) in
            let g = (Double(x) + 0.5) * scale / grid.cellSize
            let f = g - 0.5
            return (min(grid.columns - 1, Int(g)), Int(f.rounded(.down)), f - f.rounded(.down))
        }
        let opaque = UInt8((alpha * 255).rounded())
        grid.values.withUnsafeBufferPointer { values in
            func value(_ c: Int, _ r: Int) -> Float {
                c >= 0 && r >= 0 && c < grid.columns && r < grid.rows ? values[r * grid.columns + c] : .nan
            }
            for y in 0..<rows {
                let g = (Double(y0 + y) + 0.5) * scale / grid.cellSize
                let nearestRow = min(grid.rows - 1, Int(g))
                let f = g - 0.5, top = Int(f.rounded(.down)), ty = f - f.rounded(.down)
                for x in 0..<levelWidth {
                    let i = (y * levelWidth + x) * channels
                    let column = columns[x]
                    var score = values[nearestRow * grid.columns + column.nearest]
                    guard score.isFinite else {
                        if channels == 4 { band[i + 3] = 0 }
                        continue
                    }
                    if interpolate {
                        let tx = column.t
                        var sum = 0.0, weight = 0.0
                        for k in 0..<4 {
                            let (dx, dy) = (k & 1, k >> 1)
                            let w = (dx == 0 ? 1 - tx : tx) * (dy == 0 ? 1 - ty : ty)
                            let v = value(column.left + dx, top + dy)
                            if w > 0, v.isFinite { sum += w * Double(v); weight += w }
                        }
                        if weight > 0 { score = Float(sum / weight) }
                    }
                    let colour = palette[Int((min(1, max(0, HeatmapRenderer.normalised(score, range))) * 255).rounded())]
                    if channels == 4 {
                        (band[i], band[i + 1], band[i + 2], band[i + 3]) = (colour.0, colour.1, colour.2, opaque)
                    } else {
                        band[i] = UInt8((1 - alpha) * Double(band[i]) + alpha * Double(colour.0))
                        band[i + 1] = UInt8((1 - alpha) * Double(band[i + 1]) + alpha * Double(colour.1))
                        band[i + 2] = UInt8((1 - alpha) * Double(band[i + 2]) + alpha * Double(colour.2))
                    }
                }
            }
        }
    }
}
