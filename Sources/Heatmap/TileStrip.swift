import Imaging

/// The tiles behind a decision: a row of the most attended tiles over a row of the least
/// attended, each captioned with its score, as CLAM shows them next to its heatmaps.
public enum TileStrip {
    public static let fileName = "top-tiles.png"

    /// `top` and `bottom` are (tile picture, caption) in rank order; tiles are drawn `size` px wide.
    public static func render(title: String, top: [(RGBImage, String)], bottom: [(RGBImage, String)], size: Int = 128) -> RGBImage {
        let gap = 8, caption = 30, header = 28, rowLabel = 22
        let columns = max(top.count, bottom.count, 1)
        var image = RGBImage(width: rowLabel + columns * (size + gap) + gap, height: header + 2 * (size + caption + gap) + gap)
        BitmapFont.draw(title, into: &image, x: gap, y: 8, scale: 2)
        for (row, (name, tiles)) in [("TOP", top), ("LOW", bottom)].enumerated() {
            let y0 = header + row * (size + caption + gap)
            for (i, character) in name.enumerated() {
                BitmapFont.draw(String(character), into: &image, x: 6, y: y0 + 8 + i * 16, scale: 2, colour: (90, 90, 90))
            }
            for (column, (tile, text)) in tiles.enumerated() {
                let x0 = rowLabel + gap + column * (size + gap)
                let scaled = tile.resized(width: size, height: size)
                for y in 0..<size { for x in 0..<size { image[x0 + x, y0 + y] = scaled[x, y] } }
                for (line, words) in text.split(separator: "\n").enumerated() {
                    BitmapFont.draw(String(words), into: &image, x: x0, y: y0 + size + 5 + line * 11, scale: 1)
                }
            }
        }
        return image
    }
}
