import Imaging
import Results

/// A confusion matrix as a picture: rows are the true class, columns the predicted one, each
/// cell shaded by the share of its row and labelled with its count.
public enum ConfusionPicture {
    public static func render(_ report: ClassificationReport, title: String) -> RGBImage {
        let c = report.classes.count, cell = 44, scale = 2
        let labelWidth = (report.classes.map { BitmapFont.width($0, scale: scale) }.max() ?? 0) + 12
        // Column names run down, a glyph every 8 × scale pixels: room for the longest, whole.
        let longest = report.classes.map(\.count).max() ?? 0
        let top = 40 + longest * 8 * scale + 8, left = labelWidth
        let width = max(left + c * cell + 12, BitmapFont.width(title, scale: scale) + 16, BitmapFont.width("ROWS TRUE, COLUMNS PREDICTED", scale: 1) + 16)
        var image = RGBImage(width: width, height: top + c * cell + 12)
        BitmapFont.draw(title, into: &image, x: 8, y: 8, scale: scale)
        BitmapFont.draw("ROWS TRUE, COLUMNS PREDICTED", into: &image, x: 8, y: 8 + 10 * scale, scale: 1, colour: (90, 90, 90))
        for (k, name) in report.classes.enumerated() {
            BitmapFont.draw(name, into: &image, x: 6, y: top + k * cell + (cell - 7 * scale) / 2, scale: scale)
            // Column names written vertically, one glyph under the other.
            for (i, character) in name.enumerated() {
                BitmapFont.draw(String(character), into: &image, x: left + k * cell + (cell - 5 * scale) / 2,
                                y: 40 + i * 8 * scale, scale: scale)
            }
        }
        for t in 0..<c {
            let total = max(1, report.confusion[t].reduce(0, +))
            for p in 0..<c {
                let share = Double(report.confusion[t][p]) / Double(total)
                let colour = Colormap.viridis.colour(share)
                for y in 1..<cell { for x in 1..<cell { image[left + p * cell + x, top + t * cell + y] = colour } }
                let text = String(report.confusion[t][p])
                let ink: (UInt8, UInt8, UInt8) = share > 0.6 ? (0, 0, 0) : (255, 255, 255)
                BitmapFont.draw(text, into: &image, x: left + p * cell + (cell - BitmapFont.width(text, scale: scale)) / 2,
                                y: top + t * cell + (cell - 7 * scale) / 2, scale: scale, colour: ink)
            }
        }
        return image
    }
}
