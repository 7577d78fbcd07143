import Foundation
@testable import Pipeline
import Storage
import Tiling
import XCTest

final class PipelineTests: XCTestCase {
    func manifest(_ text: String, in dir: String, name: String = "m.yaml") throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The error names the file, the line and the column of the offending node.
    func assertManifestError(_ text: String, line: Int, column: Int? = nil, contains fragment: String,
                             file: StaticString = #filePath, sourceLine: UInt = #line) throws {
        let dir = TestData.scratchDirectory("manifest-errors")
        let path = try manifest(text, in: dir)
        XCTAssertThrowsError(try Manifest.load(path: path), file: file, line: sourceLine) { error in
            guard let error = error as? ManifestError else { return XCTFail("untyped \(error)", file: file, line: sourceLine) }
            XCTAssertEqual(error.file, path, file: file, line: sourceLine)
            XCTAssertEqual(error.line, line, "\(error)", file: file, line: sourceLine)
            if let column { XCTAssertEqual(error.column, column, "\(error)", file: file, line: sourceLine) }
            XCTAssertTrue(error.message.contains(fragment), "\(error)", file: file, line: sourceLine)
            XCTAssertTrue("\(error)".hasPrefix("\(path):\(line):"), file: file, line: sourceLine)
        }
    }

    func testManifestErrorsAreLocated() throws {
        try assertManifestError("stages:\n  - stage: tile\n  - stage: tiel\n", line: 3, column: 12, contains: "unknown stage 'tiel'")
        try assertManifestError("stages:\n  - stage: tile\n    params:\n      sise: 256\n", line: 4, column: 7, contains: "no parameter 'sise'")
        try assertManifestError("stages:\n  - stage: tile\n    params: {size: big}\n", line: 3, column: 20, contains: "tile.size must be an integer")
        try assertManifestError("stages:\n  - stage: tile\n    params: {size: 256, overlap: 300}\n", line: 3, contains: "overlap")
        try assertManifestError("stages:\n  - stage: predict\n    inputs: {tiles: tile}\n", line: 2, contains: "needs input 'checkpoint'")
        try assertManifestError("stages:\n  - stage: heatmap\n    inputs: {predictions: no/such/folder}\n", line: 3, contains: "neither a stage id nor an existing path")
        try assertManifestError("stages:\n  - stage: tile\n    output: ../elsewhere\n", line: 3, contains: "inside the run's output root")
        try assertManifestError("stages:\n  - stage: tile\n    output: /tmp/x\n", line: 3, contains: "inside the run's output root")
        try assertManifestError("stages:\n  - stage: tile\n  - stage: tile\n", line: 3, contains: "used twice")
        try assertManifestError("stages:\n  - stage: tile\n    params: {size: 256\n", line: 4, contains: "YAML syntax")
        try assertManifestError("name: x\nstages: []\n", line: 2, contains: "non-empty list")
        try assertManifestError("stagse:\n  - stage: tile\n", line: 1, column: 1, contains: "unknown key 'stagse'")
        // A cycle: each aggregate reads the other's output.
        try assertManifestError("""
            stages:
              - stage: heatmap
                id: a
                inputs: {predictions: b}
              - stage: heatmap
                id: b
                inputs: {predictions: a}
            """, line: 3, contains: "cycle")
    }

    func testJSONManifestAndInputOrdering() throws {
        let dir = TestData.scratchDirectory()
        // JSON is YAML's flow style: the same parser, listed out of order and sorted by inputs.
        let path = try manifest("""
            {"name": "j", "stages": [
              {"stage": "aggregate", "inputs": {"predictions": "predict"}},
              {"stage": "predict", "inputs": {"tiles": "tile", "checkpoint": "\(dir)", "classifier": "\(dir)"}},
              {"stage": "tile", "params": {"level": 0, "format": "none"}, "output": "./tiles/level0"}
            ]}
            """, in: dir, name: "m.json")
        let m = try Manifest.load(path: path)
        XCTAssertEqual(m.name, "j")
        XCTAssertEqual(m.stages.map(\.id), ["tile", "predict", "aggregate"])
        XCTAssertEqual(m.stages[0].output, "tiles/level0")
        XCTAssertEqual(m.stages[0].parameters[TileStage.level], 0)
        XCTAssertEqual(m.stages[0].parameters[TileStage.size], 256, "defaults filled in")
    }

    func testShardsCoverEverySlideExactlyOnce() {
        let slides = (0..<57).map { "/data/slides/case-\($0)/slide-\($0).svs" }
        for n in [1, 2, 3, 7] {
            var seen: [String] = []
            for k in 0..<n { seen += slides.filter { PipelineRunner.shard(of: $0, relativeTo: "/data/slides", count: n) == k } }
            XCTAssertEqual(seen.sorted(), slides.sorted(), "N=\(n)")
        }
        XCTAssertEqual(PipelineRunner.shard(of: "/a/x.svs", relativeTo: "/a", count: 5),
                       PipelineRunner.shard(of: "/mnt/b/x.svs", relativeTo: "/mnt/b", count: 5), "independent of where the folder is mounted")
    }

    /// A batch of real slides with a corrupt one: the batch completes, the bad slide is recorded
    /// with its error, re-runs skip what is done, and a parameter change redoes the stage.
    func testBatchWithCorruptSlideAndRerun() throws {
        let dir = TestData.scratchDirectory()
        let slides = dir + "/slides"
        try FileManager.default.createDirectory(atPath: slides + "/nested", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestData.cmuSVS, toPath: slides + "/CMU-1-Small-Region.svs")
        try FileManager.default.copyItem(atPath: TestData.cmuTIFF, toPath: slides + "/nested/CMU-1-Small-Region.jpeg.tiff")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: TestData.tcgaSVS))
        try bytes.prefix(5000).write(to: URL(fileURLWithPath: slides + "/broken.svs"))
        let text = "stages:\n  - stage: tile\n    params: {level: 0, size: 256, format: none}\n  - stage: mask-qc\n"
        let path = try manifest(text, in: dir)
        var options = RunOptions(slides: slides, output: dir + "/out")
        options.showProgress = false

        let first = try PipelineRunner(manifest: try Manifest.load(path: path), options: options).run()
        XCTAssertEqual(first.completed, 4)
        XCTAssertEqual(first.failed.count, 2, "tile and mask-qc of the broken slide")
        XCTAssertTrue(first.failed.allSatisfy { $0.slide.hasSuffix("broken.svs") && $0.error.contains("broken.svs") })
        let ledger = try Ledger(path: dir + "/out/" + RunDescription.ledgerName)
        XCTAssertEqual(try ledger.row(slide: "broken", stage: "tile")?.status, .failed)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/out/tile/CMU-1-Small-Region/coords.h5"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out/tile/broken"), "no output for a failed item")

        let second = try PipelineRunner(manifest: try Manifest.load(path: path), options: options).run()
        XCTAssertEqual(second.upToDate, 4)
        XCTAssertEqual(second.completed, 0)
        XCTAssertEqual(second.failed.count, 2, "failures are retried")
        XCTAssertEqual(try ledger.row(slide: "CMU-1-Small-Region", stage: "tile")?.completions, 1)

        try text.replacingOccurrences(of: "size: 256", with: "size: 512").write(toFile: path, atomically: true, encoding: .utf8)
        let third = try PipelineRunner(manifest: try Manifest.load(path: path), options: options).run()
        XCTAssertEqual(third.completed, 2, "changed parameters redo the tile stage only")
        XCTAssertEqual(third.upToDate, 2)
        XCTAssertEqual(try ledger.row(slide: "CMU-1-Small-Region", stage: "tile")?.completions, 2)
        let summary = try JSONDecoder().decode(TilingSummary.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/out/tile/CMU-1-Small-Region/tiling.json")))
        XCTAssertEqual(summary.patchSize, 512)
    }

    /// The wsi binary built next to the test bundle.
    static func wsiBinary() -> String? {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("wsi").path
        let candidates = [beside, TestData.repository + "/.build/debug/wsi"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `binary` and returns its exit status with stdout and stderr together.
    static func capture(_ binary: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// kill -9 in the middle of a batch, then the same command again: every slide × stage is
    /// completed exactly once, outputs are complete, and no partial folder is visible.
    func testKillAndResume() throws {
        guard let wsi = Self.wsiBinary() else { return XCTFail("the wsi executable was not built beside the tests") }
        let dir = TestData.scratchDirectory()
        let slides = dir + "/slides"
        try FileManager.default.createDirectory(atPath: slides, withIntermediateDirectories: true)
        for (i, source) in [TestData.cmuSVS, TestData.cmuTIFF, TestData.tcgaSVS, TestData.cmuSVS].enumerated() {
            try FileManager.default.copyItem(atPath: source, toPath: slides + "/s\(i).\(URL(fileURLWithPath: source).pathExtension)")
        }
        let path = try manifest("stages:\n  - stage: tile\n    params: {level: 0, size: 64, format: png}\n  - stage: mask-qc\n", in: dir)
        let out = dir + "/out"
        func start() throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: wsi)
            process.arguments = ["run", path, "--slides", slides, "--out", out, "--quiet"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
        let victim = try start()
        let ledgerPath = out + "/" + RunDescription.ledgerName
        var doneAtKill = 0
        let deadline = Date().addingTimeInterval(120)
        while victim.isRunning && Date() < deadline {
            if FileManager.default.fileExists(atPath: ledgerPath), let rows = try? Ledger(path: ledgerPath).allRows() {
                doneAtKill = rows.filter { $0.status == .done }.count
                if doneAtKill >= 1 { break }
            }
            usleep(20_000)
        }
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        XCTAssertGreaterThanOrEqual(doneAtKill, 1)
        XCTAssertLessThan(doneAtKill, 8, "the kill landed mid-batch")

        let resumed = try start()
        resumed.waitUntilExit()
        XCTAssertEqual(resumed.terminationStatus, 0)
        let rows = try Ledger(path: ledgerPath).allRows()
        XCTAssertEqual(rows.count, 8)
        for row in rows {
            XCTAssertEqual(row.status, .done, "\(row.slide) \(row.stage)")
            XCTAssertEqual(row.completions, 1, "\(row.slide) \(row.stage) processed exactly once")
        }
        for i in 0..<4 {
            let folder = out + "/tile/s\(i)"
            let summary = try JSONDecoder().decode(TilingSummary.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/tiling.json")))
            XCTAssertEqual(try HDF5Reader(path: folder + "/coords.h5").int64Matrix("coords").rows, summary.keptTiles)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder + "/patches").count, summary.keptTiles)
        }
        for stage in ["tile", "mask-qc"] {
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out + "/" + stage).filter { $0.hasPrefix(".") }, [],
                           "no partial output left visible in \(stage)")
        }
    }

    func testReportRendersRunFolder() throws {
        let dir = TestData.scratchDirectory()
        let slides = dir + "/slides"
        try FileManager.default.createDirectory(atPath: slides, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestData.cmuSVS, toPath: slides + "/a.svs")
        try "not a slide".write(toFile: slides + "/bad.svs", atomically: true, encoding: .utf8)
        let path = try manifest("name: report-test\nstages:\n  - stage: tile\n    params: {format: none}\n  - stage: mask-qc\n", in: dir)
        var options = RunOptions(slides: slides, output: dir + "/out")
        options.showProgress = false
        _ = try PipelineRunner(manifest: try Manifest.load(path: path), options: options).run()
        let html = try String(contentsOfFile: try Report.write(outputRoot: dir + "/out"), encoding: .utf8)
        XCTAssertTrue(html.contains("<h1>report-test</h1>"))
        XCTAssertTrue(html.contains("src=\"tile/a/qc.png\""), "pictures linked relative to the report")
        XCTAssertTrue(html.contains("bad.svs"))
        XCTAssertTrue(html.contains("class=\"error\""), "the failed slide's error is shown")
        XCTAssertFalse(html.contains("<script"), "no scripts")
        XCTAssertFalse(html.contains("http"), "no network")
    }
}
