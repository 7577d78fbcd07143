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
        // Tiles of 256², never larger than their level (libtiff's RGBA reader misplaces pixels of such tiles).
        XCTAssertEqual(directories.map(\.tileWidth), [256, 256, 240, 112])
        XCTAssertTrue(directories.allSatisfy { $0.tileWidth == $0.tileHeight && $0.compression == 8 }, "square tiles, deflate")
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
            // Every level as OpenSlide draws it, the last one smaller than a tile included: the
            // same colour at the cell's centre (averaged by downsampling, so a looser bound).
            for level in 1..<slide.levels.count {
                let scale = slide.levels[level].downsample
                let centre = try slide.readRegion(x: x, y: y, level: level, width: 1, height: 1)[0, 0]
                guard value.isFinite, scale < 8 else { continue }  // coarse levels blend neighbouring cells
                let colour = Colormap.viridis.colour(Double(value))
                let expected = [colour.0, colour.1, colour.2].map { 0.5 * Double($0) + 0.5 * 255 }
                for (got, want) in zip([centre.0, centre.1, centre.2], expected) {
                    XCTAssertEqual(Double(got), want, accuracy: 12, "cell (\(column), \(row)) at level \(level)")
                }
            }
        }
        // The smallest level is not transparent where the largest is opaque (it drew 99 % transparent).
        let last = slide.levels.count - 1
        let small = try slide.readRegion(x: 0, y: 0, level: last, width: slide.levels[last].width, height: slide.levels[last].height)
        let large = try slide.readRegion(x: 0, y: 0, level: 0, width: slide.levels[0].width, height: slide.levels[0].height)
        func tinted(_ image: RGBImage) -> Double {
            Double(stride(from: 0, to: image.pixels.count, by: 3).filter { image.pixels[$0] != 255 || image.pixels[$0 + 1] != 255 }.count) * 3
                / Double(image.pixels.count)
        }
        XCTAssertEqual(tinted(small), tinted(large), accuracy: 0.05, "share of tinted pixels at the smallest and largest level")
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
        XCTAssertTrue(directories.allSatisfy { $0.compression == 7 && $0.micronsPerPixel == nil }, "JPEG, no µm without an mpp")
        XCTAssertEqual(try Self.resolutionTags(path), [1, 1], "still resolution tags: unitless, TIFF pixels per slide pixel")
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

    /// ResolutionUnit and XResolution of the first directory.
    static func resolutionTags(_ path: String) throws -> [Double] {
        let data = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let bytes = [UInt8](data)
        func u16(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        XCTAssertEqual(Array(bytes[0..<2]), [0x49, 0x49], "little-endian classic TIFF")
        let directory = u32(4)
        var unit = 2.0, resolution = 0.0
        for entry in 0..<u16(directory) {
            let o = directory + 2 + entry * 12
            switch u16(o) {
            case 296: unit = Double(u16(o + 8))
            case 282: let at = u32(o + 8); resolution = Double(u32(at)) / Double(u32(at + 4))
            default: break
            }
        }
        return [unit, resolution]
    }

    /// The default downsample gives a pyramid on any real slide: the slide up to 4,096 px a
    /// side, and at least 8 px a tile.
    func testDefaultDownsampleMakesARealPyramid() {
        XCTAssertEqual(HeatmapTIFF.defaultDownsample(slideWidth: 100_000, slideHeight: 80_000, tileStride: 256), 100_000 / 4096, accuracy: 1e-9)
        XCTAssertEqual(HeatmapTIFF.defaultDownsample(slideWidth: 4443, slideHeight: 3567, tileStride: 256), 4443 / 4096, accuracy: 1e-9)
        XCTAssertEqual(HeatmapTIFF.defaultDownsample(slideWidth: 2220, slideHeight: 2967, tileStride: 256), 1)
        XCTAssertEqual(HeatmapTIFF.defaultDownsample(slideWidth: 400_000, slideHeight: 100_000, tileStride: 64), 8, "8 px a tile at least")
    }
}
