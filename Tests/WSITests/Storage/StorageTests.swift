import Foundation
import Imaging
import Storage
import XCTest

final class StorageTests: XCTestCase {
    func testAtomicFileIsInvisibleUntilCommitted() throws {
        let dir = TestData.scratchDirectory()
        let path = dir + "/out.txt"
        do {
            let file = try AtomicFile(path: path)
            try file.write("half")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "an abandoned write leaves nothing")
        let file = try AtomicFile(path: path)
        try file.write("whole")
        try file.commit()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "whole")
    }

    func testCSVRoundTripsAwkwardFields() {
        let fields = ["plain", "with,comma", "with \"quote\"", ""]
        XCTAssertEqual(CSV.parse(line: String(CSV.row(fields).dropLast())), fields)
    }

    func testHDF5FloatMatrixAndAttributesRoundTrip() throws {
        let path = TestData.scratchDirectory() + "/m.h5"
        try AtomicFile.produce(path) { tmp in
            let writer = try HDF5Writer(path: tmp)
            try writer.write("scores", Matrix(rows: 2, columns: 3, values: [0.5, 1, 2, 3, 4, -1] as [Float]),
                             attributes: ["classes": .string("a,b,c"), "k": .int(3), "t": .double(0.25)])
            try writer.close()
        }
        let reader = try HDF5Reader(path: path)
        let m = try reader.floatMatrix("scores")
        XCTAssertEqual(m.rows, 2)
        XCTAssertEqual(m.values, [0.5, 1, 2, 3, 4, -1])
        XCTAssertEqual(try reader.attribute("classes", of: "scores"), .string("a,b,c"))
        XCTAssertEqual(try reader.attribute("k", of: "scores"), .int(3))
        XCTAssertEqual(try reader.attribute("t", of: "scores"), .double(0.25))
        XCTAssertThrowsError(try reader.floatMatrix("missing"))
        XCTAssertThrowsError(try HDF5Reader(path: TestData.cmuSVS)) { error in
            XCTAssertEqual(error as? StorageError, .cannotOpen(path: TestData.cmuSVS, reason: "not an HDF5 file"))
        }
    }

    func testImageCodecsRoundTrip() throws {
        var image = RGBImage(width: 37, height: 21)
        for y in 0..<21 { for x in 0..<37 { image[x, y] = (UInt8(x * 6), UInt8(y * 12), UInt8((x + y) % 256)) } }
        XCTAssertEqual(try PNG.decode(try PNG.encode(image)), image)
        let jpeg = try JPEG.decode(try JPEG.encode(image, quality: 95))
        XCTAssertEqual(jpeg.width, 37)
        let error = zip(jpeg.pixels, image.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        XCTAssertLessThan(error, 20)
        XCTAssertThrowsError(try PNG.decode(Data([1, 2, 3])))
        XCTAssertThrowsError(try JPEG.decode(Data([0xFF, 0xD8, 0xFF, 0])))
    }

    func testResizeAveragesAreas() {
        var image = RGBImage(width: 4, height: 2, fill: (0, 0, 0))
        image[0, 0] = (255, 255, 255); image[1, 0] = (255, 255, 255)
        let small = image.resized(width: 2, height: 1)
        XCTAssertTrue(small[0, 0] == (128, 128, 128))
        XCTAssertTrue(small[1, 0] == (0, 0, 0))
        let big = RGBImage(width: 2, height: 2, fill: (10, 20, 30)).resized(width: 5, height: 5)
        XCTAssertTrue(big[4, 4] == (10, 20, 30))
    }

    /// JSON read value by value decodes strings, escapes, surrogate pairs and numbers as
    /// JSONSerialization does, and streams a list member by member.
    func testJSONCursorDecodesValuesAndStreamsLists() throws {
        let text = #"{"name": "caf\u00e9 \"q\"\n\ud83d\ude00", "values": [1, -2.5e3, 0.125, true, null], "nested": {"k": []}}"#
        var cursor = try JSONCursor(checking: Data(text.utf8))
        let value = cursor.value()
        XCTAssertEqual(value["name"]?.stringValue, "café \"q\"\n😀")
        XCTAssertEqual(value["values"], .array([.number(1), .number(-2500), .number(0.125), .bool(true), .null]))
        XCTAssertEqual(value["nested"]?["k"], .array([]))

        var list = try JSONCursor(checking: Data("[[1, 2], [3, 4.5], [5]]".utf8))
        var seen: [[Double]] = []
        list.forEachElement { _, element in seen.append(element.numbers() ?? []) }
        XCTAssertEqual(seen, [[1, 2], [3, 4.5], [5]])
        XCTAssertThrowsError(try JSONCursor(checking: Data("[1, NaN]".utf8))) { XCTAssertTrue("\($0)".contains("line 1, column 5"), "\($0)") }
    }
}
