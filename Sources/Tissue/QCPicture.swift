import Imaging

/// A rectangle in level-0 pixel coordinates.
public struct Level0Rect: Equatable, Sendable {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }
}

/// The picture a person looks at to trust the filtering: thumbnail, tissue outline, and the tiles
/// that were kept (and those rejected after reading, in another colour).
public enum QCPicture {
    public static let contourColour: (UInt8, UInt8, UInt8) = (0, 200, 0)
    public static let keptColour: (UInt8, UInt8, UInt8) = (30, 90, 255)
    public static let rejectedColour: (UInt8, UInt8, UInt8) = (230, 30, 30)

    public static func render(thumbnail: RGBImage, mask: TissueMask, kept: [Level0Rect] = [], rejected: [Level0Rect] = []) -> RGBImage {
        var image = thumbnail
        let w = image.width, h = image.height
        // The mask resampled to the picture once; then every test is an index.
        let columns = (0..<w).map { min(mask.width - 1, $0 * mask.width / w) }
        var tissue = [Bool](repeating: false, count: w * h)
        for y in 0..<h {
            let maskRow = min(mask.height - 1, y * mask.height / h) * mask.width
            for x in 0..<w { tissue[y * w + x] = mask.bits[maskRow + columns[x]] != 0 }
        }
        // Background outside the mask is dimmed so the segmentation reads at a glance.
        image.pixels.withUnsafeMutableBufferPointer { px in
            for i in 0..<(w * h) where !tissue[i] {
                for c in 0..<3 { px[3 * i + c] = UInt8(155 + Int(px[3 * i + c]) * 100 / 255) }
            }
        }
        for rect in kept { outline(&image, rect, mask: mask, colour: keptColour) }
        for rect in rejected { outline(&image, rect, mask: mask, colour: rejectedColour) }
        for y in 0..<h {
            for x in 0..<w where tissue[y * w + x] {
                let edge = x == 0 || y == 0 || x == w - 1 || y == h - 1
                    || !tissue[y * w + x - 1] || !tissue[y * w + x + 1] || !tissue[(y - 1) * w + x] || !tissue[(y + 1) * w + x]
                if edge { image[x, y] = contourColour }
            }
        }
        return image
    }

    private static func outline(_ image: inout RGBImage, _ rect: Level0Rect, mask: TissueMask, colour: (UInt8, UInt8, UInt8)) {
        let sx = Double(image.width) / (Double(mask.width) * mask.scaleX)
        let sy = Double(image.height) / (Double(mask.height) * mask.scaleY)
        let x0 = Int(Double(rect.x) * sx), y0 = Int(Double(rect.y) * sy)
        let x1 = min(image.width - 1, Int(Double(rect.x + rect.width) * sx) - 1)
        let y1 = min(image.height - 1, Int(Double(rect.y + rect.height) * sy) - 1)
        guard x0 <= x1, y0 <= y1, x0 >= 0, y0 >= 0 else { return }
        for x in x0...x1 { image[x, y0] = colour; image[x, y1] = colour }
        for y in y0...y1 { image[x0, y] = colour; image[x1, y] = colour }
    }
}
