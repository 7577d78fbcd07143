import Imaging
import Results

/// One picture for all classes: each scored cell takes the colour of its most probable class
/// (probabilities averaged where tiles overlap, as the heatmaps do), with a legend.
public enum ClassMap {
    public static let fileName = "classes.png"

    public static func render(_ predictions: SlidePredictions, thumbnail: RGBImage, alpha: Double) throws -> RGBImage {
        let c = predictions.classes.count
        let grids = try predictions.classes.map { name in
            ScoreGrid(origins: predictions.origins, scores: try predictions.scores(of: name, path: predictions.slide),
                      footprint: predictions.footprint, stride: predictions.stride,
                      slideWidth: predictions.slideWidth, slideHeight: predictions.slideHeight)
        }
        let scale = 2, rowHeight = 22
        let legendWidth = 40 + (predictions.classes.map { BitmapFont.width($0, scale: scale) }.max() ?? 0)
        var canvas = RGBImage(width: thumbnail.width + legendWidth, height: max(thumbnail.height, 20 + c * rowHeight))
        let pixelSize = (Double(predictions.slideWidth) / Double(thumbnail.width), Double(predictions.slideHeight) / Double(thumbnail.height))
        let opacity = min(1, max(0, alpha))
        for y in 0..<thumbnail.height {
            for x in 0..<thumbnail.width {
                var pixel = thumbnail[x, y]
                if let first = grids.first, first.columns > 0, first.rows > 0 {
                    let cx = min(first.columns - 1, Int((Double(x) + 0.5) * pixelSize.0 / first.cellSize))
                    let cy = min(first.rows - 1, Int((Double(y) + 0.5) * pixelSize.1 / first.cellSize))
                    let scores = grids.map { $0[cx, cy] }
                    if let best = scores.indices.filter({ scores[$0].isFinite }).max(by: { scores[$0] < scores[$1] }) {
                        let colour = ClassColours.colour(best)
                        func blend(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8((Double(a) * (1 - opacity) + Double(b) * opacity).rounded()) }
                        pixel = (blend(pixel.0, colour.0), blend(pixel.1, colour.1), blend(pixel.2, colour.2))
                    }
                }
                canvas[x, y] = pixel
            }
        }
        let left = thumbnail.width + 12
        for (k, name) in predictions.classes.enumerated() {
            let top = 12 + k * rowHeight
            for dy in 0..<14 { for dx in 0..<14 { canvas[left + dx, top + dy] = ClassColours.colour(k) } }
            BitmapFont.draw(name, into: &canvas, x: left + 20, y: top, scale: scale)
        }
        return canvas
    }
}
