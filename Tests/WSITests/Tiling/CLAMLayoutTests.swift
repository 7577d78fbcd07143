import Foundation
import Storage
import XCTest

/// `coords.h5` carries CLAM's and TRIDENT's attributes with their types, so both read our tiles
/// on their main path; `export-clam` lays them out as CLAM's `patches/<slide>.h5` folder.
/// (`Tests/Interop/clam_trident_read.py` reads the same files with h5py and OpenSlide as CLAM's
/// `Whole_Slide_Bag_FP` and TRIDENT's `read_coords` do.)
final class CLAMLayoutTests: XCTestCase {
    func testCoordinatesCarryCLAMAndTRIDENTAttributesAndExportInCLAMLayout() throws {
        guard let wsi = PipelineTests.wsiBinary() else { throw XCTSkip("the wsi executable was not built beside the tests") }
        let dir = TestData.scratchDirectory()
        let tiled = try PipelineTests.capture(wsi, ["tile", TestData.cmuSVS, "--out", dir, "--mpp", "1", "--size", "224", "--quiet"])
        XCTAssertEqual(tiled.status, 0, tiled.output)
        let exported = try PipelineTests.capture(wsi, ["export-clam", "--tiles", dir + "/tile", "--out", dir, "--quiet"])
        XCTAssertEqual(exported.status, 0, exported.output)

        let reader = try HDF5Reader(path: dir + "/tile/CMU-1-Small-Region/coords.h5")
        func attribute(_ name: String) -> HDF5Attribute? { try? reader.attribute(name, of: "coords") }
        // CLAM (create_patches_fp.py): ints, the downsample and level sizes as pairs, strings.
        XCTAssertEqual(attribute("patch_size"), .int(224))
        XCTAssertEqual(attribute("patch_level"), .int(0))
        XCTAssertEqual(attribute("downsample"), .doubles([1, 1]))
        XCTAssertEqual(attribute("level_dim"), .ints([2220, 2967]))
        XCTAssertEqual(attribute("downsampled_level_dim"), .ints([2220, 2967]))
        XCTAssertEqual(attribute("name"), .string("CMU-1-Small-Region"))
        XCTAssertEqual(attribute("save_path"), .string(dir + "/tile/CMU-1-Small-Region"))
        // TRIDENT (coords_to_h5): 0.499 µm/px is 20×; 224 px at 1 µm/px span 449 level-0 px, 10×.
        XCTAssertEqual(attribute("patch_size_level0"), .int(449))
        XCTAssertEqual(attribute("level0_magnification"), .int(20))
        XCTAssertEqual(attribute("target_magnification"), .int(10))
        XCTAssertEqual(attribute("overlap"), .int(0))
        XCTAssertEqual(attribute("level0_width"), .int(2220))
        XCTAssertEqual(attribute("level0_height"), .int(2967))
        XCTAssertEqual(attribute("savetodir"), .string(dir + "/tile/CMU-1-Small-Region"))

        // CLAM's layout: patch_size is what is read at patch_level (449 px of level 0, which CLAM
        // resizes itself), and TRIDENT's magnification follows so it reads the same region.
        let export = try HDF5Reader(path: dir + "/export-clam/patches/CMU-1-Small-Region.h5")
        XCTAssertEqual(try export.int64Matrix("coords").values, try reader.int64Matrix("coords").values)
        XCTAssertEqual(try export.attribute("patch_size", of: "coords"), .int(449))
        XCTAssertEqual(try export.attribute("target_magnification", of: "coords"), .int(20))
        XCTAssertEqual(try export.attribute("patch_size_level0", of: "coords"), .int(449))
        XCTAssertEqual(try export.attribute("downsample", of: "coords"), .doubles([1, 1]))

        let list = try String(contentsOfFile: dir + "/export-clam/process_list_autogen.csv", encoding: .utf8)
        XCTAssertEqual(list, "slide_id,status\nCMU-1-Small-Region.svs,processed\n")
    }
}
