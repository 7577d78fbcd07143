import Foundation
import Imaging
import SlideIO
import Tiling
@testable import Tissue
import XCTest

final class TissueTests: XCTestCase {
    func testMaskOnRealSlideKeepsTissueAndDropsGlass() throws {
        let slide = try Slide(path: TestData.cmuSVS)
        let (mask, thumbnail) = try TissueMask.compute(slide: slide, micronsPerPixel: slide.micronsPerPixel?.mean)
        XCTAssertEqual(max(thumbnail.width, thumbnail.height), 1024)
        // Checked by eye on qc.png once: epidermis and dermis at these level-0 points, glass at the others.
        for (x, y) in [(1159, 1738), (1300, 2700), (1000, 1500), (900, 2900)] {
            XCTAssertGreaterThan(mask.tissueFraction(x: x - 50, y: y - 50, width: 100, height: 100), 0.9, "tissue at \(x),\(y)")
        }
        for (x, y) in [(290, 290), (2028, 435), (300, 2300), (2000, 2000)] {
            XCTAssertLessThan(mask.tissueFraction(x: x - 50, y: y - 50, width: 100, height: 100), 0.05, "glass at \(x),\(y)")
        }
        XCTAssertEqual(mask.tissueFraction, 0.4, accuracy: 0.15, "roughly half the crop is tissue")
    }

    func testBlankSlideHasNoTissue() {
        var image = RGBImage(width: 300, height: 200, fill: (243, 243, 245))
        // Sensor noise on glass must not become tissue even though Otsu always finds a split.
        var generator = SystemRandomNumberGenerator()
        for i in 0..<image.pixels.count { image.pixels[i] = UInt8(clamping: Int(image.pixels[i]) + Int.random(in: -4...4, using: &generator)) }
        let mask = TissueMask.compute(thumbnail: image, scaleX: 10, scaleY: 10, micronsPerPixel: 0.5, config: TissueMaskConfig())
        XCTAssertEqual(mask.tissueFraction, 0)
    }

    func testOtsuSplitsBimodalHistogram() {
        let values = [UInt8](repeating: 10, count: 500) + [UInt8](repeating: 200, count: 300)
        let t = MaskOps.otsuThreshold(values)
        XCTAssertGreaterThanOrEqual(t, 10)
        XCTAssertLessThan(t, 200)
    }

    func testMedianRemovesSaltNoise() {
        var values = [UInt8](repeating: 0, count: 25 * 25)
        values[12 * 25 + 12] = 255
        XCTAssertEqual(MaskOps.medianBlur(values, width: 25, height: 25, kernel: 3).max(), 0)
    }

    func testHoleFillingAndSmallComponentRemoval() {
        // A 20x20 square of tissue with a 2x2 hole, plus a 2x2 speck elsewhere.
        let w = 40, h = 30
        var bits = [UInt8](repeating: 0, count: w * h)
        for y in 5..<25 { for x in 5..<25 { bits[y * w + x] = 1 } }
        for y in 10..<12 { for x in 10..<12 { bits[y * w + x] = 0 } }
        for y in 2..<4 { for x in 34..<36 { bits[y * w + x] = 1 } }
        let filled = MaskOps.fillHoles(bits, width: w, height: h, maxArea: 10)
        XCTAssertEqual(filled[10 * w + 10], 1, "small hole filled")
        XCTAssertEqual(filled[0], 0, "border background stays background")
        let cleaned = MaskOps.removeSmallComponents(filled, width: w, height: h, minArea: 10)
        XCTAssertEqual(cleaned[2 * w + 34], 0, "speck removed")
        XCTAssertEqual(cleaned[15 * w + 15], 1, "tissue kept")
        XCTAssertEqual(MaskOps.fillHoles(bits, width: w, height: h, maxArea: 3)[10 * w + 10], 0, "a hole above the limit stays open")
    }

    func testTissueFractionIsAreaWeighted() {
        // Left half tissue, right half glass, mask pixels are 10x10 level-0 pixels.
        let bits = (0..<(10 * 10)).map { UInt8($0 % 10 < 5 ? 1 : 0) }
        let mask = TissueMask(width: 10, height: 10, scaleX: 10, scaleY: 10, bits: bits, threshold: 0)
        XCTAssertEqual(mask.tissueFraction(x: 0, y: 0, width: 100, height: 100), 0.5, accuracy: 1e-9)
        XCTAssertEqual(mask.tissueFraction(x: 25, y: 0, width: 50, height: 50), 0.5, accuracy: 1e-9)
        XCTAssertEqual(mask.tissueFraction(x: 45, y: 3, width: 10, height: 10), 0.5, accuracy: 1e-9)
        XCTAssertEqual(mask.tissueFraction(x: 90, y: 90, width: 40, height: 40), 0, "outside the slide is glass")
    }

    /// histolab's own labels: its almost-white tiles are glass, its pen tiles are ink (a tissue
    /// tile with green ink over a third of it included: ink in a kept tile teaches the marker),
    /// and tissue tiles are kept.
    func testColourFilterAgreesWithHistolabLabels() throws {
        let expectations: [(String, TileRejection?)] = [
            ("almost-white-1.png", .white), ("no-tissue.png", .white),
            ("no-tissue-green-pen.png", .ink), ("no-tissue-red-pen.png", .ink), ("medium-nuclei-score-green-pen-level1.png", .ink),
            ("tissue-level2-4640-4649-8736-8746.png", nil),
        ]
        for (file, expected) in expectations {
            let image = try RGBImage.read(path: TestData.path("histolab-tiles/" + file))
            XCTAssertEqual(TileQuality.assess(image).1, expected, file)
        }
        XCTAssertEqual(TileQuality.assess(RGBImage(width: 8, height: 8, fill: (5, 5, 5))).1, .black)
    }

    func testQCPictureDrawsContourAndTiles() throws {
        let bits = (0..<(20 * 20)).map { i -> UInt8 in (i % 20 >= 5 && i % 20 < 15 && i / 20 >= 5 && i / 20 < 15) ? 1 : 0 }
        let mask = TissueMask(width: 20, height: 20, scaleX: 10, scaleY: 10, bits: bits, threshold: 0)
        let picture = QCPicture.render(thumbnail: RGBImage(width: 20, height: 20, fill: (200, 120, 160)), mask: mask,
                                       tiles: [QCPicture.Tile(Level0Rect(x: 80, y: 80, width: 40, height: 40))])
        XCTAssertTrue(picture[5, 10] == QCPicture.contourColour)
        XCTAssertTrue(picture[6, 10] == QCPicture.contourColour, "the outline is two pixels wide")
        XCTAssertTrue(picture[8, 9] == QCPicture.keptColour)
        XCTAssertTrue(picture[10, 10] == (200, 120, 160), "tissue inside untouched")
        XCTAssertGreaterThan(picture.height, 20, "a legend beneath")
        XCTAssertFalse(picture[1, 1] == (200, 120, 160), "glass dimmed")
    }

    /// Ink stays out of the mask and out of kept tiles on histolab's pen images (green and red
    /// marker on glass and on tissue), a field of tissue with no glass is tiled as tissue, and
    /// clean tissue loses nothing to the ink rules.
    func testInkStaysOutOfKeptTilesAndFullFieldsAreTissue() throws {
        let dir = TestData.scratchDirectory()
        func tile(_ file: String) throws -> (summary: TilingSummary, keptInk: [Double]) {
            var options = TilingOptions(grid: TileGridSpec(resolution: .level(0), size: 128))
            options.showProgress = false
            let out = dir + "/" + file
            let summary = try TileExtractor(options: options).run(slidePath: TestData.path("histolab-tiles/" + file), outputDirectory: out)
            let rows = try String(contentsOfFile: out + "/tiles.csv", encoding: .utf8).split(separator: "\n").dropFirst()
            return (summary, rows.compactMap { $0.split(separator: ",").last.flatMap { Double($0) } })
        }
        for file in ["no-tissue-green-pen.png", "no-tissue-red-pen.png", "medium-nuclei-score-green-pen-level1.png",
                     "high-nuclei-score-red-pen-level1.png", "very-low-nuclei-score-red-pen-level1.png"] {
            let (summary, keptInk) = try tile(file)
            XCTAssertGreaterThan(summary.inkFraction ?? 0, 0.005, "\(file): ink found")
            XCTAssertTrue(keptInk.allSatisfy { $0 <= 0.1 }, "\(file): kept tiles with ink \(keptInk.filter { $0 > 0.1 })")
        }
        XCTAssertEqual(try tile("no-tissue-green-pen.png").summary.keptTiles, 0, "ink on glass is no tissue")
        // Tissue edge to edge with a red smear: Otsu split the tissue itself and kept nothing.
        XCTAssertGreaterThanOrEqual(try tile("high-nuclei-score-red-pen-level1.png").summary.keptTiles, 10)
        let clean = try tile("tissue-level2-4640-4649-8736-8746.png").summary
        XCTAssertGreaterThanOrEqual(clean.keptTiles, 12)
        XCTAssertNil(clean.rejected["ink"])
    }
}
