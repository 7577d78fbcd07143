import Foundation
import Heatmap
import Imaging
import NN
import SlideIO
import XCTest

/// Full-resolution heatmaps as pyramidal TIFF, read back with libtiff and with OpenSlide.
final class HeatmapTIFFTests: XCTestCase {
    func grid() -> ScoreGrid {
        var generator = SeededGenerator(seed: 8)
        // 12 × 8 cells of 250 level-0 px; a third without tissue.
        return ScoreGrid(columns: 12, rows: 8, cellSize: 250,
                         values: (0..<96).map { _ in generator.uniform() < 0.33 ? .nan : generator.uniform() })
    }

    func testRGBALevelsTagsAndPixels() throws {
        let path = TestData.scratchDirectory() + "/heatmap.tif"
        var style = HeatmapStyle()
        style.interpolate = false
        let levels = try HeatmapTIFF.write(grid: grid(), style: style, slideWidth: 3000, slideHeight: 2000, downsample: 2, mode: .rgba,
                                           compression: .deflate, micronsPerPixel: 0.25, title: "tumour", to: path, background: nil)
        XCTAssertEqual(levels.map(\.width), [1500, 750, 375, 188])
        XCTAssertEqual(levels.map(\.height), [1000, 500, 250, 125])

        let directories = try TIFFDirectoryInfo.read(path: path)
        XCTAssertEqual(directories.map(\.width), levels.map(\.width))
        XCTAssertTrue(directories.allSatisfy { $0.tileWidth == 256 && $0.tileHeight == 256 && $0.compression == 8 }, "tiled 256², deflate")
        XCTAssertEqual(try XCTUnwrap(directories[0].micronsPerPixel).x, 0.5, accuracy: 1e-6, "0.25 µm × downsample 2")
        XCTAssertEqual(try XCTUnwrap(directories[1].micronsPerPixel).x, 1.0, accuracy: 1e-6)

        let slide = try Slide(path: path)
        XCTAssertEqual(slide.vendor, "generic-tiff")
        XCTAssertEqual(slide.levels.map(\.width), levels.map(\.width))
        XCTAssertEqual(slide.micronsPerPixelSource, "tiff-resolution")
        XCTAssertEqual(try XCTUnwrap(slide.micronsPerPixel).x, 0.5, accuracy: 1e-6)
        // Cell centres carry the cell's colour at half opacity (over white, as OpenSlide composites);
        // cells without tissue are transparent.
        let g = grid()
        for (column, row) in [(0, 0), (5, 3), (11, 7), (7, 2), (2, 6)] {
            let x = (column * 250 + 125) / 2, y = (row * 250 + 125) / 2
            let pixel = try slide.readRegion(x: x, y: y, level: 0, width: 1, height: 1)[0, 0]
            let value = g[column, row]
            if value.isFinite {
                let colour = Colormap.viridis.colour(Double(value))
                let expected = [colour.0, colour.1, colour.2].map { 0.5 * Double($0) + 0.5 * 255 }
                for (got, want) in zip([pixel.0, pixel.1, pixel.2], expected) { XCTAssertEqual(Double(got), want, accuracy: 2.5, "cell (\(column), \(row))") }
            } else {
                XCTAssertTrue(pixel == (255, 255, 255), "cell (\(column), \(row)) has no tissue: transparent, got \(pixel)")
            }
        }
    }

    func testJPEGOverTheSlideBoundedByOneTileRow() throws {
        let path = TestData.scratchDirectory() + "/over.tif"
        var bands: [(y0: Int, rows: Int, scale: Double)] = []
        let levels = try HeatmapTIFF.write(grid: grid(), style: HeatmapStyle(), slideWidth: 3000, slideHeight: 2000, downsample: 1, mode: .overSlide,
                                           compression: .jpeg, micronsPerPixel: nil, title: "t", to: path) { _, y0, width, rows, scale in
            bands.append((y0, rows, scale))
            return RGBImage(width: width, height: rows, fill: (200, 100, 50))
        }
        XCTAssertEqual(levels.count, 5)
        XCTAssertTrue(bands.allSatisfy { $0.rows <= 256 }, "the slide is read one tile row at a time")
        let scales = Set(bands.map(\.scale)).sorted()
        XCTAssertEqual(scales.count, 5)
        for (scale, expected) in zip(scales, [1.0, 2, 4, 8, 16]) { XCTAssertEqual(scale, expected, accuracy: expected * 0.01, "level-0 px per px") }
        let directories = try TIFFDirectoryInfo.read(path: path)
        XCTAssertTrue(directories.allSatisfy { $0.compression == 7 && $0.micronsPerPixel == nil }, "JPEG, no resolution without an mpp")
        let slide = try Slide(path: path)
        // Where a cell has no tissue, the slide shows through unchanged (JPEG within a few levels).
        let g = grid()
        if let empty = (0..<96).first(where: { !g.values[$0].isFinite }) {
            let pixel = try slide.readRegion(x: (empty % 12) * 250 + 125, y: (empty / 12) * 250 + 125, level: 0, width: 1, height: 1)[0, 0]
            XCTAssertEqual(Double(pixel.0), 200, accuracy: 6)
            XCTAssertEqual(Double(pixel.1), 100, accuracy: 6)
            XCTAssertEqual(Double(pixel.2), 50, accuracy: 6)
        }
        XCTAssertThrowsError(try PyramidalTIFF.write(path: path + "2", width: 10, height: 10, channels: 4, compression: .jpeg, micronsPerPixel: nil,
                                                     description: "", pixels: { _, w, _, r in [UInt8](repeating: 0, count: w * r * 4) }))
    }
}
