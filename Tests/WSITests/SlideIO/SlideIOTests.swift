import Foundation
import Imaging
@testable import SlideIO
import XCTest

final class SlideIOTests: XCTestCase {
    func testPropertiesMatchOpenSlideShowProperties() throws {
        for (folder, file) in [("cmu1-small-region-svs", TestData.cmuSVS), ("cmu1-small-region-generic-tiff", TestData.cmuTIFF),
                               ("tcga-cr-7395-svs", TestData.tcgaSVS)] {
            let expected = try TestData.recordedProperties(folder)
            let slide = try Slide(path: file)
            XCTAssertGreaterThan(expected.count, 5, folder)
            for (key, value) in expected {
                XCTAssertEqual(slide.properties[key], value, "\(folder): \(key)")
            }
            XCTAssertEqual(slide.vendor, expected["openslide.vendor"])
            XCTAssertEqual(slide.levels.count, Int(expected["openslide.level-count"]!))
            for level in slide.levels {
                XCTAssertEqual(level.width, Int(expected["openslide.level[\(level.index)].width"]!))
                XCTAssertEqual(level.height, Int(expected["openslide.level[\(level.index)].height"]!))
                XCTAssertEqual(level.downsample, Double(expected["openslide.level[\(level.index)].downsample"]!)!, accuracy: 1e-9)
            }
        }
    }

    func testResolutionAndObjective() throws {
        let svs = try Slide(path: TestData.cmuSVS)
        XCTAssertEqual(svs.micronsPerPixel, MicronsPerPixel(x: 0.499, y: 0.499))
        XCTAssertEqual(svs.objectivePower, 20)
        XCTAssertEqual(Set(svs.associatedImageNames), ["label", "macro", "thumbnail"])
        let tcga = try Slide(path: TestData.tcgaSVS)
        XCTAssertNil(tcga.micronsPerPixel)
        XCTAssertNil(tcga.objectivePower)
        XCTAssertEqual(tcga.micronsPerPixel(assuming: 0.25), 0.25)
        XCTAssertEqual(svs.micronsPerPixel(assuming: 0.25), 0.499, "a recorded resolution must not be overridden")
    }

    func testAssociatedImageDecodes() throws {
        let slide = try Slide(path: TestData.cmuSVS)
        let label = try slide.associatedImage(named: "thumbnail")
        XCTAssertGreaterThan(label.width, 10)
        XCTAssertGreaterThan(Set(label.pixels).count, 20, "a real picture, not a blank buffer")
    }

    func testRegionOutsideSlideIsWhiteNotBlack() throws {
        let slide = try Slide(path: TestData.cmuSVS)
        let region = try slide.readRegion(x: 2220 - 10, y: 0, level: 0, width: 20, height: 4)
        for y in 0..<4 {
            for x in 10..<20 { XCTAssertTrue(region[x, y] == (255, 255, 255), "outside pixel (\(x),\(y)) must be white") }
        }
    }

    func testPremultipliedAlphaConversion() {
        // Half-transparent pure red, premultiplied: A=128, R=128. Over white: R=255, G=B=127.
        let argb: [UInt32] = [0x8080_0000, 0xFF10_2030, 0x0000_0000]
        let rgb = Slide.rgbOverWhite(premultipliedARGB: argb, width: 3, height: 1)
        XCTAssertEqual(Array(rgb.pixels[0..<3]), [255, 127, 127])
        XCTAssertEqual(Array(rgb.pixels[3..<6]), [0x10, 0x20, 0x30])
        XCTAssertEqual(Array(rgb.pixels[6..<9]), [255, 255, 255])
    }

    func testMultiLevelReadsAgree() throws {
        let slide = try Slide(path: TestData.tcgaSVS)
        XCTAssertEqual(slide.bestLevel(forDownsample: 2), 1, "2.0005 counts as 2")
        XCTAssertEqual(slide.bestLevel(forDownsample: 1.5), 0)
        XCTAssertEqual(slide.bestLevel(forDownsample: 16), 1)
        let fine = try slide.readRegion(x: 2000, y: 1600, level: 0, width: 256, height: 256).resized(width: 128, height: 128)
        let coarse = try slide.readRegion(x: 2000, y: 1600, level: 1, width: 128, height: 128)
        let meanDifference = zip(fine.pixels, coarse.pixels).map { abs(Double($0) - Double($1)) }.reduce(0, +) / Double(fine.pixels.count)
        XCTAssertLessThan(meanDifference, 20, "the same tissue at two levels")
        XCTAssertGreaterThan(Set(coarse.pixels).count, 50, "tissue, not glass")
    }

    func testConcurrentReadsMatchSerialReads() throws {
        let slide = try Slide(path: TestData.cmuSVS)
        let origins = (0..<16).map { (($0 % 4) * 500, ($0 / 4) * 700) }
        let serial = try origins.map { try slide.readRegion(x: $0.0, y: $0.1, level: 0, width: 240, height: 240) }
        final class Box: @unchecked Sendable { var images = [RGBImage?](repeating: nil, count: 16); let lock = NSLock() }
        let box = Box()
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let image = try? slide.readRegion(x: origins[i].0, y: origins[i].1, level: 0, width: 240, height: 240)
            box.lock.lock(); box.images[i] = image; box.lock.unlock()
        }
        XCTAssertEqual(box.images.compactMap { $0 }, serial)
    }

    func testThumbnailKeepsAspectRatio() throws {
        let thumbnail = try Slide(path: TestData.tcgaSVS).thumbnail(maxSize: 500)
        XCTAssertEqual(thumbnail.width, 500)
        XCTAssertEqual(thumbnail.height, Int((3567.0 / 4443.0 * 500).rounded()))
    }

    func testTypedErrorsNameTheFile() throws {
        let scratch = TestData.scratchDirectory()
        XCTAssertThrowsError(try Slide(path: scratch + "/missing.svs")) { error in
            XCTAssertEqual(error as? SlideError, .fileNotFound(path: scratch + "/missing.svs"))
        }
        let text = scratch + "/notes.svs"
        try "not a slide".write(toFile: text, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Slide(path: text)) { error in
            XCTAssertEqual(error as? SlideError, .unsupportedFormat(path: text))
            XCTAssertTrue("\(error)".contains(text))
        }
        // A real SVS cut short: the TIFF header is there, the tile data is not.
        let truncated = scratch + "/truncated.svs"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: TestData.cmuSVS))
        try bytes.prefix(bytes.count / 3).write(to: URL(fileURLWithPath: truncated))
        XCTAssertThrowsError(try {
            let slide = try Slide(path: truncated)
            _ = try slide.readRegion(x: 0, y: 0, level: 0, width: 2220, height: 2967)
        }()) { error in
            guard let error = error as? SlideError else { return XCTFail("untyped error \(error)") }
            XCTAssertEqual(error.path, truncated)
            if case .unreadable = error {} else if case .unsupportedFormat = error {} else { XCTFail("unexpected \(error)") }
        }
        XCTAssertThrowsError(try Slide(path: TestData.cmuSVS).readRegion(x: 0, y: 0, level: 3, width: 10, height: 10)) { error in
            guard case .invalidRequest = error as? SlideError else { return XCTFail("\(error)") }
        }
    }

    func testPlainImageOpensAsOneLevelSlide() throws {
        let path = TestData.path("histolab-tiles/tissue-level2-4640-4649-8736-8746.png")
        let slide = try Slide(path: path)
        XCTAssertEqual(slide.vendor, "image")
        XCTAssertEqual(slide.levels.count, 1)
        XCTAssertEqual(slide.dimensions.width, 512)
        let direct = try RGBImage.read(path: path)
        let region = try slide.readRegion(x: 100, y: 50, level: 0, width: 64, height: 32)
        XCTAssertTrue(region[0, 0] == direct[100, 50])
        XCTAssertTrue(region[63, 31] == direct[163, 81])
    }

    func testDiscoveryFindsSlidesRecursivelyInOrder() throws {
        let found = try SlideDiscovery.slides(at: TestData.root)
        // Plain pictures count as one-level slides, in a folder as when named alone.
        let pictures = try FileManager.default.contentsOfDirectory(atPath: TestData.path("histolab-tiles")).filter { $0.hasSuffix(".png") }
        XCTAssertEqual(pictures.count, 8)
        let tiles = try FileManager.default.contentsOfDirectory(atPath: TestData.path("encoders/images")).sorted()
        XCTAssertEqual(tiles.count, 4)
        XCTAssertEqual(found.map { $0.dropFirst(TestData.root.count + 1) }.map(String.init),
                       ["cmu1-small-region-generic-tiff/CMU-1-Small-Region.jpeg.tiff", "cmu1-small-region-svs/CMU-1-Small-Region.svs"]
                           + tiles.map { "encoders/images/" + $0 }
                           + pictures.sorted().map { "histolab-tiles/" + $0 } + ["tcga-cr-7395-svs/tcga-cr-7395-01a-01-ts1.svs"])
    }
}
