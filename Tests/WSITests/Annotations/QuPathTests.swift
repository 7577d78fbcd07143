import Annotations
import Foundation
import Imaging
@testable import Pipeline
import SlideIO
import Storage
import Tiling
import Tissue
import XCTest

/// Annotations in (QuPath GeoJSON → tile labels) and objects out (GeoJSON QuPath imports).
final class QuPathTests: XCTestCase {
    func write(_ text: String, _ path: String) throws { try text.write(toFile: path, atomically: true, encoding: .utf8) }

    func testAreaInsideRectangleIsExact() {
        // A 10×10 square with a 4×4 hole; a tile covering its right half [5, 15) × [0, 10).
        let square = Polygon(exterior: [Point(0, 0), Point(10, 0), Point(10, 10), Point(0, 10)],
                             holes: [[Point(3, 3), Point(7, 3), Point(7, 7), Point(3, 7)]])
        XCTAssertEqual(square.area, 84)
        XCTAssertEqual(square.area(inside: Rect(x: 5, y: 0, width: 10, height: 10)), 50 - 8, accuracy: 1e-9)
        // A concave L (area 3) against a window cutting through both arms.
        let ell = Polygon(exterior: [Point(0, 0), Point(2, 0), Point(2, 1), Point(1, 1), Point(1, 2), Point(0, 2)])
        XCTAssertEqual(ell.area, 3)
        XCTAssertEqual(ell.area(inside: Rect(x: 0.5, y: 0.5, width: 2, height: 2)), 0.5 + 0.5 + 0.25, accuracy: 1e-9)
        // A right triangle with legs 4, half inside a tile [0, 2) × [0, 4): trapezoid of area 6.
        let triangle = Polygon(exterior: [Point(0, 0), Point(4, 0), Point(0, 4)])
        XCTAssertEqual(triangle.area(inside: Rect(x: 0, y: 0, width: 2, height: 4)), 6, accuracy: 1e-9)
        XCTAssertEqual(triangle.area(inside: Rect(x: 10, y: 10, width: 2, height: 2)), 0)
    }

    func testReadsEveryContainerFormAndRefusesBadInput() throws {
        let dir = TestData.scratchDirectory()
        let feature = """
        {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[3,3],[7,3],[7,7],[3,7],[3,3]]],
          [[[20,20],[30,20],[30,30],[20,20]]]]}, "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200,0,0]}}}
        """
        for (name, text) in [("collection", "{\"type\": \"FeatureCollection\", \"features\": [\(feature)]}"), ("array", "[\(feature)]"), ("one", feature)] {
            try write(text, dir + "/\(name).geojson")
            let annotations = try GeoJSONReader.read(path: dir + "/\(name).geojson").annotations
            XCTAssertEqual(annotations.count, 1, name)
            XCTAssertEqual(annotations[0].className, "Tumor")
            XCTAssertEqual(annotations[0].polygons.count, 2)
            XCTAssertEqual(annotations[0].polygons.map(\.area).reduce(0, +), 84 + 50, accuracy: 1e-9)
        }
        func refusal(_ text: String) -> String {
            try? write(text, dir + "/bad.geojson")
            do { _ = try GeoJSONReader.read(path: dir + "/bad.geojson"); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(refusal("{not json").contains("bad.geojson: not JSON"))
        XCTAssertTrue(refusal("[\(feature), {\"type\": \"Feature\", \"geometry\": {\"type\": \"LineString\", \"coordinates\": [[0,0],[1,1]]}}]")
            .contains("bad.geojson: feature 1: LineString geometries have no area"))
        XCTAssertTrue(refusal("[{\"type\": \"Feature\", \"geometry\": {\"type\": \"Polygon\", \"coordinates\": [[[0,0],[10,10],[10,0],[0,10],[0,0]]]}}]")
            .contains("feature 0: polygon 0, ring 0 crosses itself"))
        XCTAssertTrue(refusal("[{\"type\": \"Feature\", \"geometry\": {\"type\": \"Polygon\", \"coordinates\": [[[0,0],[\"a\",1],[1,0]]]}}]")
            .contains("a point is not a pair of numbers"))
        let far = try GeoJSONReader.read(path: { try! write("[\(feature)]", dir + "/far.geojson"); return dir + "/far.geojson" }()).annotations
        XCTAssertThrowsError(try AnnotationSet(path: "far.geojson", annotations: far).check(width: 25, height: 25)) {
            XCTAssertTrue("\($0)".contains("far.geojson: feature 0: reaches (0, 0)–(30, 30), outside the slide's 25 × 25"), "\($0)")
        }
    }

    func testContoursAreSimpleAndCoverTheMask() {
        // Tissue with a one-pixel hole, and two pixels touching only at a corner (a saddle).
        let rows = ["......",
                    ".###..",
                    ".#.#..",
                    ".###..",
                    "....#.",
                    "......"]
        let bits = rows.flatMap { $0.map { $0 == "#" ? UInt8(1) : 0 } }
        let mask = TissueMask(width: 6, height: 6, scaleX: 10, scaleY: 20, bits: bits, threshold: 0)
        let polygons = mask.contours()
        XCTAssertEqual(polygons.count, 2, "the corner-touching pixel is its own polygon")
        XCTAssertEqual(polygons.map(\.holes.count).sorted(), [0, 1])
        XCTAssertEqual(polygons.map(\.area).reduce(0, +), Double(bits.filter { $0 == 1 }.count) * 200, accuracy: 1e-9)
        for polygon in polygons {
            XCTAssertNil(selfIntersection(polygon.exterior))
            for hole in polygon.holes { XCTAssertNil(selfIntersection(hole)) }
        }
    }

    /// Annotations on the real TCGA slide label its tiles with the exact covered fractions,
    /// exclude a region, and come back unchanged through GeoJSON export and re-import.
    func testAnnotatedTilingAndGeoJSONRoundTrip() throws {
        let dir = TestData.scratchDirectory()
        let slides = dir + "/slides", annotations = dir + "/annotations"
        for folder in [slides, annotations] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        try FileManager.default.createSymbolicLink(atPath: slides + "/tcga-cr-7395-01a-01-ts1.svs", withDestinationPath: TestData.tcgaSVS)
        // Tiles of 256 level-0 px on a 256 grid: "Stroma" is a triangle over the tiles of columns 4–7, rows 4–7;
        // "Tumor" a square with a hole; "Pen" excludes a block.
        try write("""
        {"type": "FeatureCollection", "features": [
         {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[1024,1024],[2048,1024],[1024,2048],[1024,1024]]]},
          "properties": {"objectType": "annotation", "classification": {"name": "Stroma", "color": [150, 200, 150]}}},
         {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[2560,1024],[3584,1024],[3584,2048],[2560,2048],[2560,1024]],
                                                                           [[2944,1408],[3456,1408],[3456,1920],[2944,1920],[2944,1408]]]},
          "properties": {"objectType": "annotation", "classification": {"name": "Tumor"}}},
         {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[512,2560],[1536,2560],[1536,3072],[512,3072],[512,2560]]]},
          "properties": {"objectType": "annotation", "classification": {"name": "Pen"}}}]}
        """, annotations + "/tcga-cr-7395-01a-01-ts1.svs.geojson")
        let out = dir + "/out"
        XCTAssertEqual(try StageFixtures.stageCommand(TileStage.self, [slides, "--out", out, "--level", "0", "--size", "256", "--format", "none",
                                                                      "--annotations", annotations, "--exclude-class", "Pen"]).run().completed, 1)
        let folder = dir + "/out/tile/tcga-cr-7395-01a-01-ts1"
        let origins = try TilingFolder(folder).origins()
        let labelled = try XCTUnwrap(try TilingFolder(folder).tileLabels())
        XCTAssertEqual(labelled.classes, ["Stroma", "Tumor"])
        let fractions = try HDF5Reader(path: folder + "/coords.h5").floatMatrix("class_fractions")
        func row(_ x: Int, _ y: Int) -> Int? { origins.firstIndex { $0.x == x && $0.y == y } }
        // Exact areas: a tile on the triangle's diagonal is half covered; one inside it fully; the
        // Tumor tile with the hole's corner is 3/4 covered; a tile inside the hole not at all.
        let cases: [(x: Int, y: Int, stroma: Float, tumor: Float)] = [
            (1280, 1536, 0.5, 0), (1024, 1024, 1, 0), (1280, 1280, 1, 0), (2560, 1024, 0, 1), (2816, 1280, 0, 0.75) ]
        for c in cases {
            guard let i = row(c.x, c.y) else { XCTFail("tile (\(c.x), \(c.y)) was not kept"); continue }
            XCTAssertEqual(fractions.values[2 * i], c.stroma, accuracy: 1e-4, "Stroma at (\(c.x), \(c.y))")
            XCTAssertEqual(fractions.values[2 * i + 1], c.tumor, accuracy: 1e-4, "Tumor at (\(c.x), \(c.y))")
            XCTAssertEqual(labelled.labels[i], c.stroma >= 0.5 ? "Stroma" : c.tumor >= 0.5 ? "Tumor" : nil)
        }
        if let hole = row(3072, 1536) { XCTAssertEqual(fractions.values[2 * hole + 1], 0, "inside the hole") }
        XCTAssertNil(row(768, 2560), "tiles under Pen are excluded")
        let summary = try TilingFolder(folder).summary()
        XCTAssertGreaterThan(summary.rejected["excluded-region"] ?? 0, 0)

        XCTAssertEqual(try StageFixtures.stageCommand(ExportGeoJSONStage.self, [slides, "--out", out, "--tiles", out + "/tile"]).run().completed, 1)
        let exported = try GeoJSONReader.read(path: out + "/export-geojson/tcga-cr-7395-01a-01-ts1/tcga-cr-7395-01a-01-ts1.geojson").annotations
        XCTAssertEqual(exported.first?.className, "Tissue")
        XCTAssertEqual(exported.first?.objectType, "annotation")
        let tiles = exported.dropFirst()
        XCTAssertEqual(tiles.count, origins.count)
        for (tile, (origin, label)) in zip(tiles, zip(origins, labelled.labels)) {
            XCTAssertEqual(tile.objectType, "tile")
            XCTAssertEqual(tile.bounds, Rect(x: Double(origin.x), y: Double(origin.y), width: 256, height: 256))
            XCTAssertEqual(tile.className, label)
            // Colours: the input annotation's for Stroma; the class map's second colour for Tumor.
            if label == "Stroma" { XCTAssertEqual(tile.colour, ClassColour(150, 200, 150)) }
            if label == "Tumor" { XCTAssertEqual(tile.colour, ClassColour(ClassColours.colour(1).0, ClassColours.colour(1).1, ClassColours.colour(1).2)) }
        }
        // QuPath keys objects by UUID: ids are UUIDs, one per object, the same when exported again.
        func ids() throws -> [String] {
            let text = try String(contentsOfFile: out + "/export-geojson/tcga-cr-7395-01a-01-ts1/tcga-cr-7395-01a-01-ts1.geojson", encoding: .utf8)
            return text.components(separatedBy: "\"id\":\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        }
        let first = try ids()
        XCTAssertEqual(first.count, exported.count)
        XCTAssertEqual(Set(first).count, first.count)
        XCTAssertTrue(first.allSatisfy { UUID(uuidString: $0) != nil }, first.prefix(3).joined(separator: ", "))
        try FileManager.default.removeItem(atPath: out + "/export-geojson")
        XCTAssertEqual(try StageFixtures.stageCommand(ExportGeoJSONStage.self, [slides, "--out", out, "--tiles", out + "/tile"]).run().completed, 1)
        XCTAssertEqual(try ids(), first)
        // The exported tiles, read back as annotations, label the same tiles the same way.
        let reread = AnnotationSet(path: "exported", annotations: Array(tiles))
        for (i, origin) in origins.enumerated() where labelled.labels[i] != nil {
            let cover = reread.coverage(of: Rect(x: Double(origin.x), y: Double(origin.y), width: 256, height: 256))
            XCTAssertEqual(cover[labelled.labels[i]!], 1)
        }
    }

    /// The review loop: correcting the annotations and running again redoes the tiling.
    func testEditedAnnotationsRedoTheTiling() throws {
        let dir = TestData.scratchDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/annotations", withIntermediateDirectories: true)
        func annotate(_ name: String) throws {
            try write("[{\"type\": \"Feature\", \"geometry\": {\"type\": \"Polygon\", \"coordinates\": [[[0,0],[1200,0],[1200,1500],[0,1500],[0,0]]]}, "
                      + "\"properties\": {\"classification\": {\"name\": \"\(name)\"}}}]", dir + "/annotations/CMU-1-Small-Region.geojson")
        }
        let command = [TestData.cmuSVS, "--out", dir + "/out", "--format", "none", "--annotations", dir + "/annotations"]
        try annotate("Tumor")
        XCTAssertEqual(try StageFixtures.stageCommand(TileStage.self, command).run().completed, 1)
        XCTAssertEqual(try StageFixtures.stageCommand(TileStage.self, command).run().upToDate, 1)
        try annotate("Stroma")
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(5)],
                                              ofItemAtPath: dir + "/annotations/CMU-1-Small-Region.geojson")
        XCTAssertEqual(try StageFixtures.stageCommand(TileStage.self, command).run().completed, 1, "the edit is seen")
        XCTAssertEqual(try TilingFolder(dir + "/out/tile/CMU-1-Small-Region").tileLabels()?.classes, ["Stroma"])
    }

    func testAnnotationFileWithoutItsSlideIsNamed() throws {
        let dir = TestData.scratchDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/annotations", withIntermediateDirectories: true)
        try write("[]", dir + "/annotations/some-other-slide.geojson")
        let summary = try StageFixtures.stageCommand(TileStage.self, [TestData.cmuSVS, "--out", dir + "/out", "--format", "none",
                                                                     "--annotations", dir + "/annotations"]).run()
        XCTAssertEqual(summary.failed.count, 1)
        XCTAssertTrue(summary.failed.first?.error.contains("some-other-slide.geojson: no slide of this run has its name") ?? false,
                      "\(summary.failed)")
    }
}
