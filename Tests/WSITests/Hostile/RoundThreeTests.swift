import Annotations
import Foundation
import Heatmap
import Imaging
@testable import MIL
@testable import NN
@testable import Pipeline
import Predict
@testable import SlideIO
import Storage
import Tiling
import ViT
import XCTest
import Results

/// Hostile inputs, round three: values from a user's files that used to trap (Double → Int of
/// 1e30, NaN) or pass silently, each now refused naming the file.
final class RoundThreeTests: XCTestCase {
    func testAnnotationCoordinatesPastAnySlideAreRefused() throws {
        let dir = TestData.scratchDirectory()
        for value in ["1e30", "1e300", "-1e12", "2e9"] {
            let path = dir + "/far.geojson"
            try """
            {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"classification": {"name": "Tumor"}},
             "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [\(value), 0], [100, 100], [0, 0]]]}}]}
            """.write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try GeoJSONReader.read(path: path), value) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.contains(path) && text.contains("not a pixel position"), text)
            }
        }
    }

    /// A bag's coordinates and tile size place tiles on heatmaps: NaN, negative, absurd or text
    /// values are refused when the bag is read (train-mil and predict-mil both read through here).
    func testBagTileSizesAndCoordinatesOutsideAnySlideAreRefused() throws {
        let dir = TestData.scratchDirectory()
        func bag(coords: [Int64] = [0, 0, 256, 0], attributes: [String: HDF5Attribute]) throws -> String {
            let path = dir + "/s.h5"
            try? FileManager.default.removeItem(atPath: path)
            let writer = try HDF5Writer(path: path)
            try writer.write("features", Matrix(rows: 2, columns: 3, values: [Float](repeating: 0.5, count: 6)))
            try writer.write("coords", Matrix(rows: 2, columns: 2, values: coords), attributes: attributes)
            try writer.close()
            return path
        }
        let good = try FeatureBag.read(slide: "s", path: try bag(attributes: ["patch_size_level0": .int(256)]))
        XCTAssertEqual(good.footprint, 256)
        let refused: [([Int64], [String: HDF5Attribute], String)] = [
            ([0, 0, 256, 0], ["patch_size_level0": .double(.nan)], "not a tile size"),
            ([0, 0, 256, 0], ["patch_size_level0": .int(-5)], "not a tile size"),
            ([0, 0, 256, 0], ["patch_size_level0": .int(1 << 62)], "not a tile size"),
            ([0, 0, 256, 0], ["patch_size_level0": .int(0)], "not a tile size"),
            ([0, 0, 256, 0], ["patch_size_level0": .string("abc")], "'abc', not a number"),
            ([0, 0, 256, 0], ["patch_size": .int(256), "downsample": .double(1e300)], "not a tile size"),
            ([0, 0, -1_000_000_000_000_000, 0], ["patch_size_level0": .int(256)], "not on a slide"),
            ([0, 0, 1 << 40, 0], ["patch_size_level0": .int(256)], "not on a slide"),
        ]
        for (coords, attributes, words) in refused {
            let path = try bag(coords: coords, attributes: attributes)
            XCTAssertThrowsError(try FeatureBag.read(slide: "s", path: path), "\(attributes)") { error in
                let text = String(describing: error)
                XCTAssertTrue(text.contains(path) && text.contains(words), text)
            }
        }
    }

    /// OpenSlide's properties as a hand-edited or odd file gives them: implausible pixel sizes and
    /// objective powers count as not recorded, so no grid multiplies by 1e300.
    func testImplausibleResolutionAndObjectiveCountAsUnrecorded() {
        for (x, y) in [("1e-300", "1e-300"), ("inf", "0.25"), ("-0.25", "-0.25"), ("0.25", "nan"), ("353", "353")] {
            XCTAssertNil(Slide.plausibleMicronsPerPixel(["openslide.mpp-x": x, "openslide.mpp-y": y]), "\(x), \(y)")
        }
        XCTAssertEqual(Slide.plausibleMicronsPerPixel(["openslide.mpp-x": "0.2527", "openslide.mpp-y": "0.2527"])?.x, 0.2527)
        for power in ["inf", "nan", "0", "-20", "1e9"] {
            XCTAssertNil(Slide.plausibleObjectivePower(["openslide.objective-power": power]), power)
        }
        XCTAssertEqual(Slide.plausibleObjectivePower(["openslide.objective-power": "40"]), 40)
    }

    /// A small file declaring 60000 × 60000 pixels (10.8 GB decoded) is refused from its header,
    /// as a PNG and as a JPEG, before anything is allocated.
    func testPicturesDeclaringTooManyPixelsAreRefusedFromTheHeader() throws {
        let dir = TestData.scratchDirectory()
        func bigEndian(_ value: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8((value >> UInt32($0)) & 0xFF) } }
        func crc32(_ bytes: [UInt8]) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            return ~crc
        }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
        }
        let header = bigEndian(60000) + bigEndian(60000) + [8, 2, 0, 0, 0]
        let png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])
            + chunk("IEND", [])
        var jpeg = [UInt8](try JPEG.encode(RGBImage(width: 16, height: 16)))
        let frame = try XCTUnwrap((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange((frame + 5)..<(frame + 9), with: [0xEA, 0x60, 0xEA, 0x60])  // height, width 60000
        for (name, bytes) in [("big.png", png), ("big.jpg", jpeg)] {
            let path = dir + "/" + name
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try RGBImage.read(path: path), name) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.contains(path) && text.contains("60000×60000") && text.contains("64 Mpx"), text)
            }
        }
    }

    /// export-geojson and the labelled-tile readers index labels by tile: a coords.h5 whose labels
    /// do not match its coordinates is refused, not read past its end.
    func testTileLabelsOfAnotherLengthAreRefused() throws {
        let dir = TestData.scratchDirectory()
        let file = dir + "/" + TilingFiles.coordinatesHDF5
        let writer = try HDF5Writer(path: file)
        try writer.write("coords", Matrix(rows: 3, columns: 2, values: [0, 0, 256, 0, 512, 0] as [Int64]))
        try writer.write("labels", Matrix(rows: 2, columns: 1, values: [0, 1] as [Int64]), attributes: ["classes": .string("[\"a\", \"b\"]")])
        try writer.close()
        XCTAssertThrowsError(try TilingFolder(dir).tileLabels()) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains(file) && text.contains("2×1 values for 3 tiles"), text)
        }
    }

    /// A hand-edited predictions.h5: strides of 0, NaN, −96 or 0.001 px, a slide 2^31 px wide or a
    /// tile past the slide's edge are refused when read, before a heatmap sizes its grid.
    func testPredictionGridsNoSlideHasAreRefused() throws {
        let dir = TestData.scratchDirectory()
        func predictions(stride: Double = 256, width: Int64 = 2000, footprint: Int64 = 256, x: Int64 = 256) throws -> String {
            let path = dir + "/" + PredictionFiles.hdf5
            try? FileManager.default.removeItem(atPath: path)
            let writer = try HDF5Writer(path: path)
            try writer.write("coords", Matrix(rows: 2, columns: 2, values: [0, 0, x, 0] as [Int64]), attributes: [
                "patch_size": .int(256), "patch_level": .int(0), "footprint_level0": .int(footprint), "stride_level0": .double(stride),
                "slide_width": .int(width), "slide_height": .int(1500), "slide": .string("s.svs"),
            ])
            try writer.write("probabilities", Matrix(rows: 2, columns: 1, values: [0.2, 0.8] as [Float]), attributes: ["classes": .string("[\"t\"]")])
            try writer.close()
            return path
        }
        _ = try predictions()
        XCTAssertEqual(try SlidePredictions(directory: dir).origins.count, 2)
        let cases: [(String, () throws -> String)] = [
            ("stride of 0.0", { try predictions(stride: 0) }), ("stride of nan", { try predictions(stride: .nan) }),
            ("stride of -96.0", { try predictions(stride: -96) }), ("stride of 0.001", { try predictions(stride: 0.001) }),
            ("2147483648×1500", { try predictions(width: 1 << 31) }), ("tile of 0 level-0", { try predictions(footprint: 0) }),
            ("lies outside the 2000×1500 slide", { try predictions(x: 2000) }),
            ("more than", { try predictions(stride: 1, width: 1_000_000) }),
        ]
        for (words, make) in cases {
            let path = try make()
            XCTAssertThrowsError(try SlidePredictions(directory: dir), words) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.contains(path) && text.contains(words), text)
            }
        }
    }

    /// A misspelt roi_class or exclude_class kept no tile (or excluded none) with exit 0.
    func testAClassNoAnnotationHasIsRefusedNamingTheClassesDrawn() throws {
        let dir = TestData.scratchDirectory()
        let annotations = FrontDoorTests.repository + "/samples/annotations"
        for option in ["--roi-class", "--exclude-class"] {
            let run = try StageFixtures.stageCommand(TileStage.self, [TestData.tcgaSVS, "--out", dir + option, "--size", "256", "--annotations",
                                                                      annotations, option, "Denes"]).run()
            XCTAssertEqual(run.completed, 0, option)
            let message = run.failed.map(\.error).joined(separator: "\n")
            XCTAssertTrue(message.contains("Denes") && message.contains("Artefact, Dense, Loose"), message)
        }
        let good = try StageFixtures.stageCommand(TileStage.self, [TestData.tcgaSVS, "--out", dir + "/good", "--size", "256", "--annotations",
                                                                   annotations, "--roi-class", "Dense"]).run()
        XCTAssertEqual(good.completed, 1)
    }

    /// `s00` and `s00.h5` are one slide (listed again, not a missing file); a quoted field may hold
    /// a line break (RFC 4180), and the line numbers in errors stay those of the file.
    func testLabelsTablesNameSlidesOnceAndReadQuotedLineBreaks() throws {
        let dir = TestData.scratchDirectory()
        let path = dir + "/labels.csv"
        try "slide_id,label\ns00,a\ns00.h5,b\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SlideLabels(path: path)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("listed again") && text.contains("line 2"), text)
        }
        try "slide_id,label,case_id\ns01.svs,\"tumour, \"\"grade 2\"\"\nsecond line\",p1\ns02,normal,p2\n,\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SlideLabels(path: path)) { error in
            XCTAssertTrue(String(describing: error).contains("labels.csv:5:"), String(describing: error))
        }
        try "slide_id,label,case_id\ns01.svs,\"tumour, \"\"grade 2\"\"\nsecond line\",p1\ns02,normal,p2\n".write(toFile: path, atomically: true, encoding: .utf8)
        let labels = try SlideLabels(path: path)
        XCTAssertEqual(labels.rows.map(\.slide), ["s01", "s02"])
        XCTAssertEqual(labels.rows.first?.label, "tumour, \"grade 2\"\nsecond line")
        XCTAssertEqual(labels.rows.map(\.patient), ["p1", "p2"])
    }

    /// `a/b` and `a_b` wrote the same heatmap files, one overwriting the other.
    func testClassesWhoseNamesSanitiseAlikeGetFilesOfTheirOwn() throws {
        let classes = ["a/b", "a_b", "a b", "a_b-2", "tumour"]
        let stems = SlideHeatmaps.fileStems(classes)
        XCTAssertEqual(Set(stems.values).count, classes.count, "\(stems)")
        XCTAssertEqual(stems["a/b"], "a_b")
        XCTAssertEqual(stems["a_b-2"], "a_b-2", "a class's own plain name is kept")
        XCTAssertEqual(stems["tumour"], "tumour")
        XCTAssertTrue(SlideHeatmaps.collisions(classes).contains("'a_b' → a_b-3"), SlideHeatmaps.collisions(classes))
        XCTAssertEqual(SlideHeatmaps.collisions(["tumour", "stroma"]), "")

        let dir = TestData.scratchDirectory()
        let predictions = try SlidePredictions(directory: try writePredictions(classes: ["a/b", "a_b"], in: dir))
        try SlideHeatmaps.write(predictions, source: dir, thumbnail: RGBImage(width: 40, height: 30), classes: [], scale: .auto,
                                verdict: { _ in nil }, style: HeatmapStyle(), rawGrid: false, to: dir)
        for stem in ["a_b", "a_b-2"] { XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/heatmap-\(stem).png"), stem) }
    }

    private func writePredictions(classes: [String], in dir: String) throws -> String {
        let writer = try HDF5Writer(path: dir + "/" + PredictionFiles.hdf5)
        try writer.write("coords", Matrix(rows: 2, columns: 2, values: [0, 0, 256, 0] as [Int64]), attributes: [
            "patch_size": .int(256), "patch_level": .int(0), "footprint_level0": .int(256), "stride_level0": .double(256),
            "slide_width": .int(2000), "slide_height": .int(1500), "slide": .string("s.svs"),
        ])
        let json = String(decoding: try JSONSerialization.data(withJSONObject: classes), as: UTF8.self)
        try writer.write("probabilities", Matrix(rows: 2, columns: classes.count, values: (0..<(2 * classes.count)).map { Float($0 % 3) / 3 }),
                         attributes: ["classes": .string(json)])
        try writer.close()
        return dir
    }

    /// train-mil fed a tile stage's output was accepted and failed late; the manifest is refused
    /// at the input's line and column, before anything runs.
    func testAnInputFedTheWrongKindOfStageIsRefusedWhereItIsWritten() throws {
        let dir = TestData.scratchDirectory()
        let path = dir + "/m.yaml"
        try "stages:\n  - stage: tile\n  - stage: train-mil\n    inputs: {features: tile}\n    params: {labels: \(path)}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Manifest.load(path: path)) { error in
            guard let error = error as? ManifestError else { return XCTFail("untyped \(error)") }
            XCTAssertEqual(error.line, 4)
            XCTAssertEqual(error.column, 24)
            XCTAssertTrue(error.message.contains("reads the output of features, not of tile"), error.message)
        }
    }

    /// A product oneDNN will not create or run fails the item being computed with an error that
    /// names the product; it used to stop the whole process (preconditionFailure).
    func testAProductTheLibraryRefusesIsAnErrorNotATrap() {
        let x = [UInt16](repeating: 0, count: 64), y = UnsafeMutablePointer<Float>.allocate(capacity: 64)
        defer { y.deallocate() }
        let product = BF16Product(inputs: -4, outputs: 8, hasBias: false)
        XCTAssertThrowsError(try product.run(rows: 2, x: x, weight: x, bias: nil, y: y)) { error in
            XCTAssertEqual(error as? LibraryRefusal, LibraryRefusal(what: "a bf16 matrix product of 2×-4×8"))
        }
        let gradient = BF16WeightGradient(inputs: 4, outputs: 8)
        XCTAssertThrowsError(try gradient.accumulate(rows: -2, dy: x, x: x, into: y)) { error in
            XCTAssertTrue(String(describing: error).hasPrefix("oneDNN refused a bf16 weight gradient"), "\(error)")
        }
    }

    /// JSON errors say where and what: Foundation's "The data is not in the correct format"
    /// gave neither. Valid JSON of another shape says what was expected.
    func testJSONErrorsGiveLineColumnAndWhatIsWrong() throws {
        let cases: [(String, String)] = [
            ("{\n  \"a\": NaN\n}", "line 2, column 8: NaN is not a JSON number"),
            ("[1, -Infinity]", "line 1, column 5: -Infinity is not a JSON number"),
            ("{\"x\": 1e999}", "line 1, column 7: 1e999 is beyond the range of a number"),
            ("{\"features\": [\n{\"type\": \"Feature\"", "line 2, column 19: the text ends before the object opened at line 2, column 1 is closed"),
            ("  \n ", "the file is empty"),
            ("{\"a\": 1,}", "line 1, column 9: expected a quoted key, found '}'"),
            ("{\"a\": \"one\ntwo\"}", "line 1, column 11: a line break or control character inside a string"),
            ("[1] 2", "line 1, column 5: more text after the JSON value ends"),
            (String(repeating: "[", count: 600), "nested more than 512 levels deep"),
        ]
        for (text, expected) in cases {
            let problem = JSONText.syntaxError(in: Data(text.utf8))
            XCTAssertTrue(problem?.contains(expected) == true, "\(text.prefix(40)): \(problem ?? "accepted")")
        }
        XCTAssertNil(JSONText.syntaxError(in: Data(#"{"a": [1, -2.5e-3, true, null, "\u00e9\n"], "b": {}}"#.utf8)))

        let dir = TestData.scratchDirectory()
        try "5".write(toFile: dir + "/five.geojson", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try GeoJSONReader.read(path: dir + "/five.geojson")) { error in
            XCTAssertTrue("\(error)".contains("expected a FeatureCollection, a list of Features or one Feature, found a number"), "\(error)")
        }
        try "{\"type\": \"FeatureCollection\", \"features\": [NaN]}".write(toFile: dir + "/nan.geojson", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try GeoJSONReader.read(path: dir + "/nan.geojson")) { error in
            XCTAssertTrue("\(error)".contains(dir + "/nan.geojson") && "\(error)".contains("line 1, column 44: NaN"), "\(error)")
        }
        try #"{"patch_size": "two hundred"}"#.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ViTConfig.read(path: dir + "/config.json")) { error in
            XCTAssertTrue("\(error)".contains(dir + "/config.json: not a ViT config: "), "\(error)")
        }
        struct Shape: Decodable { let depth: Int }
        XCTAssertThrowsError(try JSONText.decode(Shape.self, from: Data(#"{"depth": "12"}"#.utf8))) { error in
            XCTAssertEqual("\(error)", "at 'depth': expected a number")
        }
        XCTAssertThrowsError(try JSONText.decode(Shape.self, from: Data("5".utf8))) { error in
            XCTAssertTrue("\(error)".contains("the top level"), "\(error)")
        }
    }

    /// A read-only output folder is said in plain words with its path, not Foundation's text.
    func testAReadOnlyVolumeIsSaidInPlainWords() {
        let error = CocoaError(.fileWriteVolumeReadOnly, userInfo: [NSFilePathErrorKey: "/mnt/slides/out"])
        XCTAssertEqual(describeError(error), "/mnt/slides/out: Read-only file system")
    }

    /// GeoJSON that used to pass without a word: each refused naming the feature, or said.
    func testQuestionableGeoJSONIsRefusedOrSaid() throws {
        let dir = TestData.scratchDirectory()
        func feature(_ rings: String, properties: String = #""classification": {"name": "Tumor"}"#) -> String {
            #"{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": ["# + rings + #"]}, "properties": {"# + properties + "}}"
        }
        let square = "[[0,0],[100,0],[100,100],[0,100],[0,0]]"
        func read(_ text: String) throws -> GeoJSONReader.Contents {
            try text.write(toFile: dir + "/a.geojson", atomically: true, encoding: .utf8)
            return try GeoJSONReader.read(path: dir + "/a.geojson")
        }
        func refusal(_ text: String) -> String {
            do { _ = try read(text); return "accepted" } catch { return "\(error)" }
        }
        let refused: [(String, String)] = [
            ("[" + feature(square, properties: #""classification": {"name": " "}"#) + "]", "feature 0: an empty class name"),
            ("[" + feature(square + ",[[200,200],[300,200],[300,300],[200,200]]") + "]", "feature 0: polygon 0, ring 1 is a hole outside its outer ring"),
            ("[" + feature(square + "," + square) + "]", "feature 0: polygon 0, ring 1 is a hole as large as its outer ring"),
            ("[" + feature("[[0,0],[50,50],[100,100],[0,0]]") + "]", "feature 0: polygon 0, ring 0 has no area"),
            (#"{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}, "features": ["#
                + feature(square) + "]}", "declares the coordinate system 'urn:ogc:def:crs:OGC:1.3:CRS84'"),
        ]
        for (text, expected) in refused { XCTAssertTrue(refusal(text).contains(expected), "\(expected): \(refusal(text))") }

        // A hole touching its shell at a vertex is a QuPath export like any other.
        XCTAssertEqual(try read("[" + feature(square + ",[[0,0],[50,10],[10,50],[0,0]]") + "]").annotations[0].polygons[0].holes.count, 1)
        let mixed = try read("[" + feature(square) + "," + feature(square, properties: #""objectType": "annotation""#) + "]")
        XCTAssertEqual(mixed.annotations.count, 2)
        XCTAssertEqual(mixed.warnings, [dir + "/a.geojson: 1 of 2 features have no classification and label no tiles"])

        // Two files for one slide: which is meant cannot be guessed.
        let files = [dir + "/CMU-1.geojson", dir + "/CMU-1.svs.geojson", dir + "/other.geojson"]
        XCTAssertThrowsError(try AnnotationSet.file(for: "/slides/CMU-1.svs", among: files)) { error in
            XCTAssertTrue("\(error)".contains("2 annotation files belong to CMU-1.svs (CMU-1.geojson, CMU-1.svs.geojson); keep one"), "\(error)")
        }
        XCTAssertEqual(try AnnotationSet.file(for: "/slides/other.tiff", among: files), dir + "/other.geojson")
    }

    /// More classes than an HDF5 attribute can list are refused when the file is read, naming
    /// it and the count (they used to fail late, inside HDF5, after tiling).
    func testTooManyClassesAreRefusedEarly() throws {
        let dir = TestData.scratchDirectory()
        let features = (0..<(GeoJSONReader.maximumClasses + 1)).map { i in
            #"{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[10,0],[10,10],[0,0]]]}, "properties": {"classification": {"name": "class \#(i)"}}}"#
        }
        try ("[" + features.joined(separator: ",") + "]").write(toFile: dir + "/many.geojson", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try GeoJSONReader.read(path: dir + "/many.geojson")) { error in
            XCTAssertEqual("\(error)", dir + "/many.geojson: 501 classes; at most 500 are supported in one file")
        }
    }

    /// A QuPath detection export is read a feature at a time: peak memory stays under 10× the
    /// file (Foundation's object tree took 30–80×).
    func testAnnotationMemoryStaysUnderTenTimesTheFile() throws {
        let dir = TestData.scratchDirectory(), path = dir + "/cells.geojson"
        let features = (0..<20_000).map { i -> String in
            let x = 100 + (i % 200) * 40, y = 100 + (i / 200) * 40
            return #"{"type": "Feature", "id": "\#(UUID().uuidString)", "geometry": {"type": "Polygon", "coordinates": [[[\#(x), \#(y)], [\#(x + 30), \#(y)], "#
                + #"[\#(x + 30), \#(y + 30)], [\#(x), \#(y + 30)], [\#(x), \#(y)]]]}, "properties": {"objectType": "detection", "classification": {"name": "Tumor"}}}"#
        }
        try ("{\"type\": \"FeatureCollection\", \"features\": [" + features.joined(separator: ",") + "]}").write(toFile: path, atomically: true, encoding: .utf8)
        let bytes = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        guard (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil else {
            throw XCTSkip("this kernel does not let a process reset its peak memory")
        }
        let before = try Self.memory("VmRSS")
        let contents = try GeoJSONReader.read(path: path)
        let peak = try Self.memory("VmHWM")
        XCTAssertEqual(contents.annotations.count, 20_000)
        XCTAssertLessThan(peak - before, 10 * bytes, "peak \((peak - before) >> 20) MiB for a \(bytes >> 20) MiB file")
    }

    /// A line of /proc/self/status, in bytes.
    static func memory(_ field: String) throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix(field + ":") })
        return try XCTUnwrap(Int(line.split(separator: " ").dropFirst().first ?? "")) * 1024
    }

    /// Cohorts are assembled from links: a slide folder given as a link, and linked sub-folders,
    /// are searched like real ones (they found nothing, or were skipped); a link loop ends, and
    /// a file reached twice is one slide.
    func testLinkedFoldersAreFollowedAndLoopsEnd() throws {
        let dir = TestData.scratchDirectory(), fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/store/deep", withIntermediateDirectories: true)
        try fm.copyItem(atPath: TestData.cmuSVS, toPath: dir + "/store/a.svs")
        try fm.copyItem(atPath: TestData.cmuTIFF, toPath: dir + "/store/deep/b.tiff")
        try fm.createDirectory(atPath: dir + "/cohort", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: dir + "/cohort/linked", withDestinationPath: dir + "/store/deep")
        try fm.copyItem(atPath: TestData.cmuSVS, toPath: dir + "/cohort/c.svs")
        try fm.createSymbolicLink(atPath: dir + "/cohort/loop", withDestinationPath: dir + "/cohort")
        try fm.createSymbolicLink(atPath: dir + "/slides", withDestinationPath: dir + "/store")

        XCTAssertEqual(try SlideDiscovery.slides(at: dir + "/slides"), [dir + "/slides/a.svs", dir + "/slides/deep/b.tiff"], "a linked slide folder")
        XCTAssertEqual(try SlideDiscovery.slides(at: dir + "/cohort"), [dir + "/cohort/c.svs", dir + "/cohort/linked/b.tiff"],
                       "a linked sub-folder followed, the loop entered once")

        // Feature bags: a link loop beside the bag used to report it as two slides.
        let bags = dir + "/bags"
        try fm.createDirectory(atPath: bags, withIntermediateDirectories: true)
        let writer = try HDF5Writer(path: bags + "/s1.h5")
        try writer.write("features", Matrix(rows: 1, columns: 2, values: [Float](repeating: 1, count: 2)))
        try fm.createSymbolicLink(atPath: bags + "/again", withDestinationPath: bags)
        XCTAssertEqual(try FeatureBag.discover([bags]).map(\.slide), ["s1"])
        XCTAssertEqual(try FeatureBag.discover([bags, bags + "/s1.h5"]).map(\.slide), ["s1"], "the same file named twice")
    }

    /// Features of 3e38 are finite but overflow the first product: they are refused when the
    /// bag is read, not reported as a loss that the learning rate should fix.
    func testFeaturesTooLargeForAnyEncoderAreRefusedAtTheBag() throws {
        let dir = TestData.scratchDirectory()
        let writer = try HDF5Writer(path: dir + "/s.h5")
        try writer.write("features", Matrix(rows: 2, columns: 2, values: [0.5, -1, 3e38, 2]))
        XCTAssertThrowsError(try FeatureBag.read(slide: "s", path: dir + "/s.h5")) { error in
            XCTAssertTrue("\(error)".contains("feature 0 of tile 1 is 3e+38; encoders' features are far smaller"), "\(error)")
        }
    }

    /// docs/reliability.md states the limits the code enforces.
    func testReliabilityTableStatesTheLimitsInForce() throws {
        let section = try String(contentsOfFile: FrontDoorTests.repository + "/docs/reliability.md", encoding: .utf8)
        let grouped = NumberFormatter()
        grouped.numberStyle = .decimal
        grouped.usesGroupingSeparator = true
        grouped.groupingSeparator = ","
        let claims = [
            "\(grouped.string(from: NSNumber(value: RGBImage.maximumPixels)) ?? "") pixels",
            "\(GeoJSONReader.maximumBytes >> 20) MiB per file", "\(GeoJSONReader.maximumClasses) classes per file",
            "class names ≤ \(GeoJSONReader.maximumClassNameLength) characters", "nesting \(JSONText.maximumDepth) deep",
            "\(YAMLNode.maximumBytes >> 20) MiB, \(grouped.string(from: NSNumber(value: YAMLNode.maximumNodes)) ?? "") values, nesting \(YAMLNode.maximumDepth) deep",
            "\(Slide.plausibleMicronsPerPixel.lowerBound)–\(Int(Slide.plausibleMicronsPerPixel.upperBound)) µm/px",
        ]
        for claim in claims { XCTAssertTrue(section.contains(claim), "docs/reliability.md should say: \(claim)") }
    }
}
