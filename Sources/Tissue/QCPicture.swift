import Annotations
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

/// The picture a person looks at to trust the filtering: thumbnail, tissue outline, marker ink,
/// the tiles kept and those rejected (a colour per reason), the annotations, and a legend with the
/// counts beneath.
public enum QCPicture {
    public static let contourColour: (UInt8, UInt8, UInt8) = (0, 200, 0)
    public static let keptColour: (UInt8, UInt8, UInt8) = (30, 90, 255)
    public static let inkColour: (UInt8, UInt8, UInt8) = (230, 0, 200)
    /// Rejected tiles by reason: glass grey, black dark, ink magenta, anything else red.
    public static func rejectedColour(_ reason: String) -> (UInt8, UInt8, UInt8) {
        switch reason {
        case TileRejection.white.rawValue: return (150, 150, 150)
        case TileRejection.black.rawValue: return (40, 40, 40)
        case TileRejection.ink.rawValue: return inkColour
        default: return (230, 30, 30)
        }
    }

    /// A tile and why it was rejected (nil when kept).
    public struct Tile: Sendable {
        public var rect: Level0Rect
        public var rejection: String?
        public init(_ rect: Level0Rect, rejection: String? = nil) { (self.rect, self.rejection) = (rect, rejection) }
    }

    public static func render(thumbnail: RGBImage, mask: TissueMask, tiles: [Tile] = [], annotations: AnnotationSet? = nil,
                              classCounts: [(name: String, tiles: Int)] = []) -> RGBImage {
        var image = thumbnail
        let (tissue, ink) = resampled(mask, width: image.width, height: image.height)
        dimGlass(&image, tissue: tissue)
        hatch(&image, ink)
        for tile in tiles { outline(&image, tile.rect, mask: mask, colour: tile.rejection.map(rejectedColour) ?? keptColour) }
        if let annotations { drawAnnotations(&image, annotations, mask: mask) }
        drawContour(&image, tissue)
        return withLegend(image, tiles: tiles, inkShare: mask.inkFraction, classCounts: classCounts)
    }

    /// The mask's tissue and ink bits at the picture's size, so every later test is an index.
    private static func resampled(_ mask: TissueMask, width w: Int, height h: Int) -> (tissue: [Bool], ink: [Bool]) {
        let columns = (0..<w).map { min(mask.width - 1, $0 * mask.width / w) }
        var tissue = [Bool](repeating: false, count: w * h), ink = tissue
        let (tissueBits, inkBits) = (mask.bits, mask.inkBits)
        for y in 0..<h {
            let row = min(mask.height - 1, y * mask.height / h) * mask.width
            for x in 0..<w {
                tissue[y * w + x] = tissueBits[row + columns[x]] != 0
                ink[y * w + x] = inkBits[row + columns[x]] != 0
            }
        }
        return (tissue, ink)
    }

    /// Background outside the mask is lightened so the segmentation reads at a glance.
    private static func dimGlass(_ image: inout RGBImage, tissue: [Bool]) {
        image.pixels.withUnsafeMutableBufferPointer { px in
            for i in tissue.indices where !tissue[i] {
                for c in 0..<3 { px[3 * i + c] = UInt8(155 + Int(px[3 * i + c]) * 100 / 255) }
            }
        }
    }

    /// Ink as diagonal magenta hatching: what lies under it stays visible between the lines.
    private static func hatch(_ image: inout RGBImage, _ ink: [Bool]) {
        let w = image.width
        for i in ink.indices where ink[i] && (i % w + i / w) % 4 == 0 { image[i % w, i / w] = inkColour }
    }

    /// The tissue outline, two pixels wide so it shows on a 1024-px picture of a whole slide.
    private static func drawContour(_ image: inout RGBImage, _ tissue: [Bool]) {
        let w = image.width, h = image.height
        func isTissue(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < w && y < h && tissue[y * w + x] }
        for y in 0..<h {
            for x in 0..<w where tissue[y * w + x] {
                let edge = (-2...2).contains { d in !isTissue(x + d, y) || !isTissue(x, y + d) }
                if edge { image[x, y] = contourColour }
            }
        }
    }

    private static func drawAnnotations(_ image: inout RGBImage, _ annotations: AnnotationSet, mask: TissueMask) {
        let sx = Double(image.width) / (Double(mask.width) * mask.scaleX), sy = Double(image.height) / (Double(mask.height) * mask.scaleY)
        let names = annotations.classNames, colours = annotations.classColours
        for annotation in annotations.annotations {
            guard let name = annotation.className else { continue }
            let colour = colours[name].map { ($0.red, $0.green, $0.blue) } ?? ClassColours.colour(names.firstIndex(of: name) ?? 0)
            for polygon in annotation.polygons {
                for ring in [polygon.exterior] + polygon.holes {
                    for (a, b) in zip(ring, ring.dropFirst() + ring.prefix(1)) {
                        line(&image, from: (a.x * sx, a.y * sy), to: (b.x * sx, b.y * sy), colour: colour)
                    }
                }
            }
        }
    }

    private static func line(_ image: inout RGBImage, from a: (Double, Double), to b: (Double, Double), colour: (UInt8, UInt8, UInt8)) {
        let steps = max(1, Int(max(abs(b.0 - a.0), abs(b.1 - a.1)).rounded(.up)))
        guard steps < 1 << 16 else { return }
        for k in 0...steps {
            let t = Double(k) / Double(steps)
            let x = Int((a.0 + (b.0 - a.0) * t).rounded()), y = Int((a.1 + (b.1 - a.1) * t).rounded())
            for (dx, dy) in [(0, 0), (1, 0), (0, 1)] where x + dx >= 0 && y + dy >= 0 && x + dx < image.width && y + dy < image.height {
                image[x + dx, y + dy] = colour
            }
        }
    }

    /// The picture over a legend: what each colour means, with counts.
    private static func withLegend(_ picture: RGBImage, tiles: [Tile], inkShare: Double, classCounts: [(name: String, tiles: Int)]) -> RGBImage {
        var rejections: [String: Int] = [:]
        for case let reason? in tiles.map(\.rejection) { rejections[reason, default: 0] += 1 }
        var entries: [(String, (UInt8, UInt8, UInt8))] = [("TISSUE OUTLINE", contourColour),
                                                          ("KEPT \(tiles.count - rejections.values.reduce(0, +))", keptColour)]
        entries += rejections.sorted { $0.key < $1.key }.map { ("REJECTED \($0.key.uppercased()) \($0.value)", rejectedColour($0.key)) }
        entries.append((String(format: "INK %.1f%% OF THE SLIDE", inkShare * 100), inkColour))
        var lines = [entries]
        if !classCounts.isEmpty {
            lines.append(classCounts.enumerated().map { k, c in ("\(c.name.uppercased()) \(c.tiles)", ClassColours.colour(k)) })
        }
        let rowHeight = 18
        var image = RGBImage(width: picture.width, height: picture.height + rowHeight * lines.count * 2 + 8)
        for y in 0..<picture.height { for x in 0..<picture.width { image[x, y] = picture[x, y] } }
        var y = picture.height + 8
        for line in lines {
            var x = 8
            for (text, colour) in line {
                if x + 16 + BitmapFont.width(text, scale: 1) > image.width { x = 8; y += rowHeight }
                for dy in 0..<10 { for dx in 0..<10 where x + dx < image.width && y + dy < image.height { image[x + dx, y + dy] = colour } }
                BitmapFont.draw(text, into: &image, x: x + 14, y: y + 2, scale: 1)
                x += 14 + BitmapFont.width(text, scale: 1) + 16
            }
            y += rowHeight
        }
        return image.cropped(x: 0, y: 0, width: image.width, height: min(image.height, y + 4))
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
