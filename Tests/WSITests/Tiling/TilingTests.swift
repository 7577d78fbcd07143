import Foundation
import Imaging
import SlideIO
import Storage
import Tiling
import XCTest

final class TilingTests: XCTestCase {
    private func options(_ resolution: TileResolution, format: PatchFormat = .none, size: Int = 256) -> TilingOptions {
        var options = TilingOptions(grid: TileGridSpec(resolution: resolution, size: size))
        options.format = format
        options.showProgress = false
        return options
    }

    func testMicronGridHasExpectedLevel0Stride() throws {
        let slide = try Slide(path: TestData.cmuSVS)
        // 1 µm/px on a 0.499 µm/px scan: each output pixel spans 2.004 level-0 pixels.
        let grid = try TileGrid(slide: slide, spec: TileGridSpec(resolution: .micronsPerPixel(1.0), size: 224), micronsPerPixel: slide.micronsPerPixel?.mean)
        XCTAssertEqual(grid.scale, 1.0 / 0.499, accuracy: 1e-12)
        XCTAssertEqual(grid.footprint, Int((224 / 0.499).rounded()))
        XCTAssertEqual(grid.readLevel, 0)
        XCTAssertEqual(grid.readSize, grid.footprint)
        XCTAssertEqual(grid.origin(column: 3, row: 2).x, Int((3 * 224 / 0.499).rounded()))
        XCTAssertEqual(grid.origin(column: 3, row: 2).y, Int((2 * 224 / 0.499).rounded()))
        XCTAssertEqual(grid.columns, (2220 - grid.footprint) / Int(grid.stride) + 1)
        XCTAssertEqual(grid.outputMicronsPerPixel ?? 0, 1.0, accuracy: 1e-12)

        // 10x on a 20x scan is the same physical scale as 2 level-0 pixels per output pixel.
        let ten = try TileGrid(slide: slide, spec: TileGridSpec(resolution: .magnification(10), size: 256, overlap: 64), micronsPerPixel: slide.micronsPerPixel?.mean)
        XCTAssertEqual(ten.scale, 2)
        XCTAssertEqual(ten.footprint, 512)
        XCTAssertEqual(ten.stride, 384)
    }

    func testMultiLevelSlidePicksTheCoarserLevel() throws {
        let slide = try Slide(path: TestData.tcgaSVS)
        let grid = try TileGrid(slide: slide, spec: TileGridSpec(resolution: .micronsPerPixel(0.5), size: 256),
                                micronsPerPixel: slide.micronsPerPixel(assuming: 0.25))
        XCTAssertEqual(grid.readLevel, 1)
        XCTAssertEqual(grid.readSize, 256)
        XCTAssertEqual(grid.footprint, 512)
    }

    func testMissingResolutionIsATypedError() throws {
        let slide = try Slide(path: TestData.cmuTIFF)
        XCTAssertThrowsError(try TileGrid(slide: slide, spec: TileGridSpec(resolution: .micronsPerPixel(0.5)), micronsPerPixel: slide.micronsPerPixel?.mean)) { error in
            XCTAssertEqual(error as? SlideError, .missingResolution(path: TestData.cmuTIFF, needed: "a grid at 0.5 µm/px"))
        }
        XCTAssertThrowsError(try TileGrid(slide: slide, spec: TileGridSpec(resolution: .magnification(20)), micronsPerPixel: slide.micronsPerPixel?.mean)) { error in
            guard case .missingResolution = error as? SlideError else { return XCTFail("\(error)") }
        }
        XCTAssertNoThrow(try TileGrid(slide: slide, spec: TileGridSpec(resolution: .level(0)), micronsPerPixel: slide.micronsPerPixel?.mean))
    }

    func testTilingIsDeterministicAndOutputsAgree() throws {
        let out = TestData.scratchDirectory()
        let a = try TileExtractor(options: options(.micronsPerPixel(0.5), format: .shard)).run(slidePath: TestData.cmuSVS, outputDirectory: out + "/a")
        var twoThreads = options(.micronsPerPixel(0.5), format: .png)
        twoThreads.threads = 2
        let b = try TileExtractor(options: twoThreads).run(slidePath: TestData.cmuSVS, outputDirectory: out + "/b")
        XCTAssertEqual(a.keptTiles, b.keptTiles)
        XCTAssertEqual(a.gridTiles, 88)
        XCTAssertGreaterThan(a.keptTiles, 20)
        XCTAssertLessThan(a.keptTiles, 60)

        let csvA = try String(contentsOfFile: out + "/a/tiles.csv", encoding: .utf8)
        XCTAssertEqual(csvA, try String(contentsOfFile: out + "/b/tiles.csv", encoding: .utf8))
        let rows = csvA.split(separator: "\n").dropFirst().map { CSV.parse(line: String($0)) }
        XCTAssertEqual(rows.count, a.keptTiles)

        // HDF5, read back through the library, holds the same coordinates as the CSV.
        let h5 = try HDF5Reader(path: out + "/a/coords.h5")
        let coords = try h5.int64Matrix("coords")
        XCTAssertEqual(coords.columns, 2)
        XCTAssertEqual(coords.rows, rows.count)
        for (i, row) in rows.enumerated() {
            XCTAssertEqual(coords.values[2 * i], Int64(row[0]))
            XCTAssertEqual(coords.values[2 * i + 1], Int64(row[1]))
            XCTAssertGreaterThanOrEqual(Double(row[2])!, 0.5)
        }
        XCTAssertEqual(try h5.attribute("patch_size", of: "coords"), .int(256))
        XCTAssertEqual(try h5.attribute("patch_level", of: "coords"), .int(0))
        XCTAssertEqual(try h5.attribute("mpp_level0", of: "coords"), .double(0.499))
        XCTAssertEqual(try h5.attribute("name", of: "coords"), .string("CMU-1-Small-Region"))

        // The shard's pixels are what OpenSlide returns at those coordinates, and the PNG patches decode to the same.
        let shard = try PatchShardReader(path: out + "/a/" + PatchShard.fileName)
        XCTAssertEqual(shard.count, a.keptTiles)
        XCTAssertEqual(shard.records.map { Int64($0.x) }, stride(from: 0, to: coords.values.count, by: 2).map { coords.values[$0] })
        let slide = try Slide(path: TestData.cmuSVS)
        for i in [0, shard.count / 2, shard.count - 1] {
            let record = shard.records[i]
            let expected = try slide.readRegion(x: record.x, y: record.y, level: 0, width: 256, height: 256)
            XCTAssertEqual(try shard.patch(i), expected)
            XCTAssertEqual(try RGBImage.read(path: out + "/b/patches/\(record.x)_\(record.y).png"), expected)
        }
        let patchFiles = try FileManager.default.contentsOfDirectory(atPath: out + "/b/patches")
        XCTAssertEqual(patchFiles.count, b.keptTiles)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out + "/b").filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "no temporary files left behind")

        let qc = try RGBImage.read(path: out + "/a/qc.png")
        XCTAssertEqual(qc.width, 766, "the 1024-px thumbnail of a 2220 × 2967 slide")
        XCTAssertGreaterThan(qc.height, 1024, "a legend beneath")
    }

    func testTissueThresholdControlsTheCount() throws {
        var strict = options(.level(0))
        strict.tissueThreshold = 0.95
        var loose = options(.level(0))
        loose.tissueThreshold = 0.05
        let out = TestData.scratchDirectory()
        let s = try TileExtractor(options: strict).run(slidePath: TestData.cmuTIFF, outputDirectory: out + "/s")
        let l = try TileExtractor(options: loose).run(slidePath: TestData.cmuTIFF, outputDirectory: out + "/l")
        XCTAssertLessThan(s.tissueTiles, l.tissueTiles)
        XCTAssertGreaterThan(s.tissueTiles, 0)
    }

    func testSlideWithoutTissueYieldsNoTilesAndValidOutputs() throws {
        let out = TestData.scratchDirectory()
        let glass = out + "/glass.png"
        try RGBImage(width: 1200, height: 900, fill: (242, 242, 240)).write(to: glass)
        let summary = try TileExtractor(options: options(.level(0), format: .shard)).run(slidePath: glass, outputDirectory: out + "/glass")
        XCTAssertEqual(summary.gridTiles, 12)
        XCTAssertEqual(summary.keptTiles, 0)
        let coords = try HDF5Reader(path: out + "/glass/coords.h5").int64Matrix("coords")
        XCTAssertEqual(coords.rows, 0)
        XCTAssertEqual(try PatchShardReader(path: out + "/glass/" + PatchShard.fileName).count, 0)
    }

    func testColourFilterRejectsInkedTiles() throws {
        // A 'slide' made of real histolab tiles side by side: tissue, green ink, tissue.
        let tissue = try RGBImage.read(path: TestData.path("histolab-tiles/tissue-level2-4640-4649-8736-8746.png"))
        let ink = try RGBImage.read(path: TestData.path("histolab-tiles/no-tissue-green-pen.png"))
        var canvas = RGBImage(width: 512 * 3, height: 512)
        for (slot, tile) in [tissue, ink, tissue].enumerated() {
            for y in 0..<512 { for x in 0..<512 { canvas[slot * 512 + x, y] = tile[x, y] } }
        }
        let out = TestData.scratchDirectory()
        try canvas.write(to: out + "/canvas.png")
        var opts = options(.level(0), size: 512)
        opts.tissueThreshold = 0.3
        let summary = try TileExtractor(options: opts).run(slidePath: out + "/canvas.png", outputDirectory: out + "/c")
        XCTAssertEqual(summary.rejected["ink"], 1)
        let rejected = try String(contentsOfFile: out + "/c/rejected.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rejected.count, 2)
        XCTAssertTrue(rejected[1].hasPrefix("512,0,"))
        XCTAssertTrue(rejected[1].hasSuffix(",ink"))
    }

    func testCorruptSlideFailsWithTypedError() throws {
        let out = TestData.scratchDirectory()
        let broken = out + "/broken.svs"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: TestData.tcgaSVS))
        try bytes.prefix(4096).write(to: URL(fileURLWithPath: broken))
        XCTAssertThrowsError(try TileExtractor(options: options(.level(0))).run(slidePath: broken, outputDirectory: out + "/b")) { error in
            guard let error = error as? SlideError else { return XCTFail("untyped \(error)") }
            XCTAssertEqual(error.path, broken)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/b/coords.h5"))
    }
}
