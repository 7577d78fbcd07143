import Foundation
@testable import Heatmap
import Imaging
import Predict
import Storage
import XCTest
import Results

final class HeatmapTests: XCTestCase {
    /// Published viridis values (matplotlib) at 0, ¼, ½, ¾ and 1.
    func testViridisMatchesPublishedTable() {
        let published: [(Double, (Int, Int, Int))] = [(0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)),
                                                      (0.75, (94, 201, 98)), (1, (253, 231, 37))]
        for (t, expected) in published {
            let c = Colormap.viridis.colour(t)
            XCTAssertLessThanOrEqual(abs(Int(c.0) - expected.0), 2, "viridis(\(t)) red")
            XCTAssertLessThanOrEqual(abs(Int(c.1) - expected.1), 2, "viridis(\(t)) green")
            XCTAssertLessThanOrEqual(abs(Int(c.2) - expected.2), 2, "viridis(\(t)) blue")
        }
        XCTAssertTrue(Colormap.jet.colour(0) == (0, 0, 128), "jet starts dark blue")
        XCTAssertTrue(Colormap.jet.colour(1) == (128, 0, 0), "jet ends dark red")
        let middle = Colormap.coolwarm.colour(0.5)
        XCTAssertTrue([middle.0, middle.1, middle.2].allSatisfy { (218...223).contains($0) }, "coolwarm is light grey in the middle")
    }

    func testGridAveragesOverlapsAndLeavesGlassEmpty() {
        // Tiles 100 wide every 50: each inner cell is covered by up to four tiles.
        let origins = [(x: 0, y: 0), (x: 50, y: 0)]
        let grid = ScoreGrid(origins: origins, scores: [1, 0], footprint: 100, stride: 50, slideWidth: 300, slideHeight: 100)
        XCTAssertEqual(grid.columns, 6)
        XCTAssertEqual(grid.rows, 2)
        XCTAssertEqual(grid[0, 0], 1)
        XCTAssertEqual(grid[1, 0], 0.5, "cell shared by both tiles is their mean")
        XCTAssertEqual(grid[2, 1], 0)
        XCTAssertTrue(grid[3, 0].isNaN, "no tile here: no tissue")
        let smooth = grid.smoothed(sigma: 1)
        XCTAssertTrue(smooth[5, 1].isNaN, "smoothing keeps empty cells empty")
        XCTAssertGreaterThan(smooth[2, 0], 0, "and spreads scores between filled cells")
    }

    /// A synthetic score (1 on the left half of the slide, 0 on the right) rendered at full
    /// opacity lands where it should, and glass keeps the thumbnail's pixels.
    func testRenderedScoresLandOnTheirCoordinates() throws {
        let width = 1000, height = 600, tile = 100
        var origins: [(x: Int, y: Int)] = [], scores: [Float] = []
        for y in stride(from: 0, to: height, by: tile) {
            for x in stride(from: 0, to: width, by: tile) where !(x >= 800 && y >= 400) {
                origins.append((x, y))
                scores.append(x < 500 ? 1 : 0)
            }
        }
        let grid = ScoreGrid(origins: origins, scores: scores, footprint: tile, stride: Double(tile), slideWidth: width, slideHeight: height)
        let thumbnail = RGBImage(width: 200, height: 120, fill: (250, 250, 250))
        var style = HeatmapStyle()
        style.alpha = 1
        style.interpolate = false
        let picture = HeatmapRenderer.render(grid: grid, thumbnail: thumbnail, slideWidth: width, slideHeight: height,
                                             caption: HeatmapCaption(slide: "s", measure: "P(TUMOUR), 0 TO 1"), style: style)
        let decoded = try PNG.decode(try PNG.encode(picture))
        XCTAssertTrue(decoded[10, 10] == Colormap.viridis.colour(1), "left half scores 1")
        XCTAssertTrue(decoded[97, 60] == Colormap.viridis.colour(1), "just left of the middle")
        XCTAssertTrue(decoded[103, 60] == Colormap.viridis.colour(0), "just right of the middle")
        XCTAssertTrue(decoded[190, 110] == (250, 250, 250), "untiled corner shows the thumbnail")
        XCTAssertGreaterThan(decoded.width, 200, "legend to the right")
    }

    func testLegendTextIsDrawn() {
        var image = RGBImage(width: 40, height: 20)
        BitmapFont.draw("1", into: &image, x: 0, y: 0, scale: 1)
        // The glyph '1' has its stem in the middle column on rows 1...5 and a foot on row 6.
        for row in 1...5 { XCTAssertTrue(image[2, row] == (0, 0, 0), "stem row \(row)") }
        XCTAssertTrue(image[1, 6] == (0, 0, 0) && image[3, 6] == (0, 0, 0), "foot")
        XCTAssertTrue(image[0, 6] == (255, 255, 255), "foot is three wide")
        XCTAssertTrue(image[4, 2] == (255, 255, 255), "right of the stem is blank")
        XCTAssertEqual(BitmapFont.width("tumour", scale: 2), 6 * 12 - 2)
        var unknown = RGBImage(width: 10, height: 10)
        BitmapFont.draw("ß", into: &unknown, x: 0, y: 0, scale: 1)  // no glyph: drawn as '?', no crash
        XCTAssertTrue(unknown[1, 0] == (0, 0, 0))
    }

    func testAggregationRules() {
        // Three tiles, two classes.
        let p: [Float] = [0.9, 0.1,
                          0.4, 0.6,
                          0.2, 0.8]
        let classes = ["tumour", "normal"]
        let mean = Aggregation.label(slide: "s", probabilities: p, classes: classes, rule: .mean)
        XCTAssertEqual(mean.scores["tumour"]!, 0.5, accuracy: 1e-6)
        XCTAssertEqual(mean.label, "normal")
        XCTAssertEqual(Aggregation.label(slide: "s", probabilities: p, classes: classes, rule: .max).label, "tumour")
        let top = Aggregation.label(slide: "s", probabilities: p, classes: classes, rule: .topK(2))
        XCTAssertEqual(top.scores["tumour"]!, 0.65, accuracy: 1e-6)
        XCTAssertEqual(top.scores["normal"]!, 0.7, accuracy: 1e-6)
        let votes = Aggregation.label(slide: "s", probabilities: p, classes: classes, rule: .majority)
        XCTAssertEqual(votes.scores["normal"]!, 2.0 / 3, accuracy: 1e-9)
        let fraction = Aggregation.label(slide: "s", probabilities: p, classes: classes, rule: .fractionAbove(0.85))
        XCTAssertEqual(fraction.scores["tumour"]!, 1.0 / 3, accuracy: 1e-9)
        XCTAssertEqual(fraction.scores["normal"]!, 0)
        XCTAssertEqual(fraction.label, "tumour")
        XCTAssertEqual(Aggregation.label(slide: "s", probabilities: [], classes: classes, rule: .mean).label, "", "no tiles, no label")
    }

    func testNPYRoundTripAndHeader() throws {
        let values: [Float] = [1, .nan, 3, 4, 5, 6]
        let data = NPY.encode(values, shape: [2, 3])
        XCTAssertEqual((10 + Int(data[8])) % 64, 0, "header padded to 64 bytes as numpy writes it")
        let (back, shape) = try NPY.decode(data)
        XCTAssertEqual(shape, [2, 3])
        XCTAssertEqual(back[0], 1)
        XCTAssertTrue(back[1].isNaN)
        XCTAssertThrowsError(try NPY.decode(Data([1, 2, 3])))
    }
}
