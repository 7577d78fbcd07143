import Foundation
import SlideIO
import Tiling
import XCTest

/// Asking for finer pixels than the scan has (0.25 µm/px of a 0.5 µm/px slide) reads a smaller
/// region and enlarges it: said and recorded, or refused with no_upsample.
final class EnlargedTilesTests: XCTestCase {
    func testEnlargedTilesAreRecordedOrRefused() throws {
        let dir = TestData.scratchDirectory()
        var options = TilingOptions(grid: TileGridSpec(resolution: .micronsPerPixel(0.25), size: 256))
        options.showProgress = false
        let summary = try TileExtractor(options: options).run(slidePath: TestData.cmuSVS, outputDirectory: dir + "/fine")
        XCTAssertEqual(try XCTUnwrap(summary.enlargedBy), 0.499 / 0.25, accuracy: 0.01)
        XCTAssertEqual(summary.footprintLevel0, 128)
        let recorded = try TilingFolder(dir + "/fine").summary()
        XCTAssertEqual(recorded.enlargedBy, summary.enlargedBy, "tiling.json keeps it")

        options.refusesEnlarging = true
        XCTAssertThrowsError(try TileExtractor(options: options).run(slidePath: TestData.cmuSVS, outputDirectory: dir + "/refused")) { error in
            XCTAssertTrue("\(error)".contains("finer pixels than the scan has (0.499 µm/px at level 0): tiles would be enlarged 2×"), "\(error)")
        }
        options.grid.resolution = .micronsPerPixel(0.5)
        XCTAssertNil(try TileExtractor(options: options).run(slidePath: TestData.cmuSVS, outputDirectory: dir + "/native").enlargedBy,
                     "0.5 µm/px of a 0.499 µm/px scan is the scan")
    }
}
