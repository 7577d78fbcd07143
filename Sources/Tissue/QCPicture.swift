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
        // Background outside the mask is dimmed so the segmentation reads at a glance.
        for y in 0..<image.height {
            for x in 0..<image.width where !isTissue(mask, x, y, image) {
                let (r, g, b) = image[x, y]
                image[x, y] = (UInt8(155 + Int(r) * 100 / 255), UInt8(155 + Int(g) * 100 / 255), UInt8(155 + Int(b) * 100 / 255))
            }
        }
        for rect in kept { outline(&image, rect, mask: mask, colour: keptColour) }
        for rect in rejected { outline(&image, rect, mask: mask, colour: rejectedColour) }
        for y in 0..<image.height {
            for x in 0..<image.width where isTissue(mask, x, y, image) {
                let edge = [(-1, 0), (1, 0), (0, -1), (0, 1)].contains { dx, dy in !isTissue(mask, x + dx, y + dy, image) }
                if edge { image[x, y] = contourColour }
            }
        }
        return image
    }

    private static func isTissue(_ mask: TissueMask, _ x: Int, _ y: Int, _ image: RGBImage) -> Bool {
        guard x >= 0, y >= 0, x < image.width, y < image.height else { return false }
        let mx = min(mask.width - 1, x * mask.width / image.width), my = min(mask.height - 1, y * mask.height / image.height)
        return mask.bits[my * mask.width + mx] != 0
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
