import Foundation
import Imaging
@testable import Pipeline
@testable import Predict
import SDMAE
import SlideIO
import Storage
import Tiling
import XCTest
import Results

/// Each case was reproduced on an earlier main (issue "One front door", hardening list) and must
/// now end in a clear error or a correct result with nothing lost.
final class HardeningTests: XCTestCase {
    func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func options(_ slides: String?, _ out: String) -> RunOptions {
        var options = RunOptions(slides: slides, output: out)
        options.showProgress = false
        return options
    }

    // 1. YAML: alias bombs, deep nesting, duplicate keys, JSON errors reported as JSON.
    func testManifestParserLimits() throws {
        let dir = TestData.scratchDirectory()
        var bomb = "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
        var previous = "a"
        for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            bomb += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
            previous = name
        }
        try write(bomb + "stages:\n  - stage: tile\n", to: dir + "/bomb.yaml")
        let start = Date()
        XCTAssertThrowsError(try Manifest.load(path: dir + "/bomb.yaml")) { error in
            XCTAssertTrue("\(error)".contains("expands to more than"), "\(error)")
        }
        try write("stages: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n", to: dir + "/deep.yaml")
        XCTAssertThrowsError(try Manifest.load(path: dir + "/deep.yaml")) { error in
            XCTAssertTrue("\(error)".contains("nesting deeper than"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10, "refused before any expansion")
        try write("stages:\n  - stage: tile\n    params: {size: 128, size: 256}\n", to: dir + "/dup.yaml")
        XCTAssertThrowsError(try Manifest.load(path: dir + "/dup.yaml")) { error in
            XCTAssertEqual((error as? ManifestError)?.line, 3)
            XCTAssertTrue("\(error)".contains("key 'size' is given twice"), "\(error)")
        }
        try write("{\"stages\": [\n  {\"stage\": \"tile\",, \"params\": {}}\n]}\n", to: dir + "/bad.json")
        XCTAssertThrowsError(try Manifest.load(path: dir + "/bad.json")) { error in
            XCTAssertEqual((error as? ManifestError)?.line, 2)
            XCTAssertTrue("\(error)".contains("JSON syntax"), "\(error)")
        }
    }

    // 2. Checkpoints and safetensors are validated against bounds and their own tensors.
    func testHostileCheckpointsAreRefused() throws {
        let dir = TestData.scratchDirectory()
        var header = Data()
        withUnsafeBytes(of: UInt64.max.littleEndian) { header.append(contentsOf: $0) }
        header.append(contentsOf: Array("{}".utf8))
        try header.write(to: URL(fileURLWithPath: dir + "/huge-header.safetensors"))
        XCTAssertThrowsError(try Safetensors.read(path: dir + "/huge-header.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("header length"), "\(error)")
        }
        let (checkpoint, _) = try StageFixtures.tinyModel(in: dir)
        let (tensors, metadata) = try Safetensors.read(path: checkpoint)
        let deep = metadata["config"]!.replacingOccurrences(of: "\"depth\":1", with: "\"depth\":1000000")
        XCTAssertNotEqual(deep, metadata["config"])
        let named = tensors.map { (name: $0.key, shape: $0.value.shape, values: $0.value.floats) }
        try Safetensors.write(named, metadata: metadata.merging(["config": deep]) { $1 }, to: dir + "/deep.safetensors")
        XCTAssertThrowsError(try SDMAEModel.load(path: dir + "/deep.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("depth 1000000 is outside"), "\(error)")
        }
        let twoBlocks = metadata["config"]!.replacingOccurrences(of: "\"depth\":1", with: "\"depth\":2")
        try Safetensors.write(named, metadata: metadata.merging(["config": twoBlocks]) { $1 }, to: dir + "/two.safetensors")
        XCTAssertThrowsError(try SDMAEModel.load(path: dir + "/two.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("the file holds 1"), "\(error)")
        }
        // 13. Byte-reproducible metadata: the config is written with sorted keys.
        let config = try XCTUnwrap(metadata["config"])
        let keys = try NSRegularExpression(pattern: #""([A-Za-z]+)":"#).matches(in: config, range: NSRange(config.startIndex..., in: config))
            .compactMap { Range($0.range(at: 1), in: config).map { String(config[$0]) } }
        XCTAssertGreaterThan(keys.count, 10)
        XCTAssertEqual(keys, keys.sorted())
    }

    // 3. Two runs on one output folder: the second is refused and names the first.
    func testSecondRunOnTheSameFolderIsRefused() throws {
        let dir = TestData.scratchDirectory()
        let manifest = try Manifest.single(TileStage.self, parameters: try StageParameters([:], specs: TileStage.parameters), inputs: [:])
        var first: PipelineRunner? = try PipelineRunner(manifest: manifest, options: options(TestData.cmuSVS, dir + "/out"))
        XCTAssertNotNil(first)
        XCTAssertThrowsError(try PipelineRunner(manifest: manifest, options: options(TestData.cmuSVS, dir + "/out"))) { error in
            XCTAssertTrue("\(error)".contains("is in use by another wsi process (pid \(getpid())"), "\(error)")
        }
        first = nil
        XCTAssertNoThrow(try PipelineRunner(manifest: manifest, options: options(TestData.cmuSVS, dir + "/out")))
    }

    // 4, 5 and 7. A deleted output is redone; a slide replaced by a corrupt copy withdraws its
    // downstream results and the label table drops it; NaN weights never reach final names.
    func testDeletedOutputsCorruptSlidesAndNaN() throws {
        let dir = TestData.scratchDirectory()
        let slides = dir + "/slides"
        try FileManager.default.createDirectory(atPath: slides, withIntermediateDirectories: true)
        for name in ["a", "b"] { try FileManager.default.copyItem(atPath: TestData.cmuSVS, toPath: "\(slides)/\(name).svs") }
        let (checkpoint, classifier) = try StageFixtures.tinyModel(in: dir)
        try write("""
            stages:
              - stage: tile
                params: {size: 512, format: png}
              - stage: predict
                inputs: {tiles: tile, checkpoint: \(checkpoint), classifier: \(classifier)}
              - stage: aggregate
                inputs: {predictions: predict}
            """, to: dir + "/m.yaml")
        let out = dir + "/out"
        func run() throws -> RunSummary { try PipelineRunner(manifest: try Manifest.load(path: dir + "/m.yaml"), options: options(slides, out)).run() }
        let first = try run()
        XCTAssertEqual(first.completed, 5)
        XCTAssertEqual(try String(contentsOfFile: out + "/aggregate/labels.csv", encoding: .utf8).split(separator: "\n").count, 3)
        // The command line reads the same folder of per-slide predictions without a slide list.
        XCTAssertEqual(try StageFixtures.stageCommand(AggregateStage.self, ["--out", dir + "/cli", "--predictions", out + "/predict"]).run().completed, 1)
        XCTAssertEqual(try String(contentsOfFile: dir + "/cli/aggregate/labels.csv", encoding: .utf8),
                       try String(contentsOfFile: out + "/aggregate/labels.csv", encoding: .utf8))

        try FileManager.default.removeItem(atPath: out + "/predict/a/predictions.csv")
        let second = try run()
        XCTAssertEqual(second.completed, 2, "the item whose output was deleted, and the aggregate that reads it")
        XCTAssertEqual(second.upToDate, 3)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/predict/a/predictions.csv"))

        try Data("not a slide".utf8).write(to: URL(fileURLWithPath: slides + "/b.svs"))
        let third = try run()
        XCTAssertEqual(third.failed.map(\.stage), ["tile"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/tile/b"), "the old tiles of b are gone")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/predict/b"), "predictions from b's old tiles are withdrawn")
        let ledger = try Ledger(path: out + "/" + RunDescription.ledgerName)
        XCTAssertNil(try ledger.row(slide: "b", stage: "predict"))
        let table = try String(contentsOfFile: out + "/aggregate/labels.csv", encoding: .utf8)
        XCTAssertFalse(table.contains("\nb,"), "the label table no longer lists b")
        XCTAssertTrue(table.contains("\na,"))
        let html = try String(contentsOfFile: try Report.write(outputRoot: out), encoding: .utf8)
        XCTAssertTrue(html.contains("tile failed"))

        // 7. NaN in the classifier: refused when read, nothing written under predict.
        let nanDir = dir + "/nan"
        try FileManager.default.createDirectory(atPath: nanDir, withIntermediateDirectories: true)
        let (_, nanClassifier) = try StageFixtures.tinyModel(in: nanDir, nanClassifier: true)
        XCTAssertThrowsError(try LinearProbe.read(path: nanClassifier)) { error in
            XCTAssertTrue("\(error)".contains("tensor 'weight' holds NaN or infinity"), "\(error)")
        }
        let predict = try StageFixtures.stageCommand(PredictStage.self, [slides + "/a.svs", "--out", dir + "/nan-out", "--tiles", out + "/tile",
                                                           "--checkpoint", checkpoint, "--classifier", nanClassifier]).run()
        XCTAssertEqual(predict.failed.count, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/nan-out/predict/a"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/nan-out/predict"), [], "no partial folder left")

        // 7. NaN in predictions: aggregate fails instead of writing a header-only table.
        let predictions = out + "/predict/a/" + PredictionFiles.hdf5
        let reader = try HDF5Reader(path: predictions)
        let coords = try reader.int64Matrix("coords")
        var probabilities = try reader.floatMatrix("probabilities")
        probabilities = Matrix(rows: probabilities.rows, columns: probabilities.columns, values: probabilities.values.map { _ in Float.nan })
        let attributes = try ["patch_size", "patch_level", "footprint_level0", "stride_level0", "slide_width", "slide_height", "slide"]
            .reduce(into: [String: HDF5Attribute]()) { $0[$1] = try reader.attribute($1, of: "coords") }
        let classes = try reader.attribute("classes", of: "probabilities")
        let poisoned = dir + "/poisoned/a"
        try FileManager.default.createDirectory(atPath: poisoned, withIntermediateDirectories: true)
        let writer = try HDF5Writer(path: poisoned + "/" + PredictionFiles.hdf5)
        try writer.write("coords", coords, attributes: attributes)
        try writer.write("probabilities", probabilities, attributes: ["classes": classes])
        try writer.close()
        let aggregate = try StageFixtures.stageCommand(AggregateStage.self, ["--out", dir + "/poisoned-out", "--predictions", dir + "/poisoned"]).run()
        XCTAssertEqual(aggregate.failed.count, 1)
        XCTAssertTrue(aggregate.failed[0].error.hasSuffix("probabilities hold NaN or infinity; predict the slide again"), aggregate.failed[0].error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/poisoned-out/aggregate/labels.csv"))
    }

    // 6. Two slides that would share an output folder are refused on the command line too;
    // switching the patch format into the same output leaves no stale patches.
    func testOutputFolderClashesAndFormatSwitches() throws {
        let dir = TestData.scratchDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/slides/sub1", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/slides/sub2", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestData.cmuSVS, toPath: dir + "/slides/sub1/a.svs")
        try FileManager.default.copyItem(atPath: TestData.cmuTIFF, toPath: dir + "/slides/sub2/a.tiff")
        XCTAssertThrowsError(try StageFixtures.stageCommand(TileStage.self, [dir + "/slides", "--out", dir + "/out"])) { error in
            XCTAssertTrue("\(error)".contains("would share the output folder 'a'"), "\(error)")
        }
        let out = dir + "/one"
        XCTAssertEqual(try StageFixtures.stageCommand(TileStage.self, [dir + "/slides/sub1/a.svs", "--out", out, "--size", "512", "--format", "png"]).run().completed, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/tile/a/patches"))
        XCTAssertEqual(try StageFixtures.stageCommand(TileStage.self, [dir + "/slides/sub1/a.svs", "--out", out, "--size", "512", "--format", "shard"]).run().completed, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/tile/a/patches"), "no stale patch folder beside the shard")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/tile/a/" + PatchShard.fileName))
        XCTAssertEqual(try TilingFolder(out + "/tile/a").patches(slidePath: dir + "/slides/sub1/a.svs").count,
                       try TilingFolder(out + "/tile/a").summary().keptTiles)
    }

    // 8. Disk full: the reason is said, no partial folder is left, and the ledger says failed.
    func testDiskFullIsReportedAndCleanedUp() throws {
        guard geteuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root") }
        let dir = TestData.scratchDirectory()
        let mountPoint = dir + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=400k", "tmpfs", mountPoint]
        try mount.run()
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else { throw XCTSkip("this machine does not allow mounting a tmpfs") }
        defer {
            let unmount = Process()
            unmount.executableURL = URL(fileURLWithPath: "/bin/umount")
            unmount.arguments = [mountPoint]
            try? unmount.run()
            unmount.waitUntilExit()
        }
        let summary = try StageFixtures.stageCommand(TileStage.self, [TestData.cmuSVS, "--out", mountPoint, "--size", "128", "--format", "png"]).run()
        XCTAssertEqual(summary.failed.count, 1)
        XCTAssertTrue(summary.failed.first?.error.contains("No space left on device") ?? false, summary.failed.first?.error ?? "")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: mountPoint + "/tile")) ?? []
        XCTAssertEqual(leftovers, [], "no partial folder left filling the disk")
        let row = try Ledger(path: mountPoint + "/" + RunDescription.ledgerName).row(slide: "CMU-1-Small-Region", stage: "tile")
        XCTAssertEqual(row?.status, .failed)
        // Foundation's own errors come out in the same words.
        let foundation = NSError(domain: NSCocoaErrorDomain, code: CocoaError.fileWriteOutOfSpace.rawValue,
                                 userInfo: [NSFilePathErrorKey: "/x", NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(ENOSPC))])
        XCTAssertEqual(describeError(foundation), "/x: No space left on device")
    }

    // 9. An output folder reached through a symbolic link out of the output root is refused.
    func testSymlinkOutOfTheOutputRootIsRefused() throws {
        let dir = TestData.scratchDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/out/tile", withDestinationPath: dir + "/elsewhere")
        let summary = try StageFixtures.stageCommand(TileStage.self, [TestData.cmuSVS, "--out", dir + "/out", "--size", "512", "--format", "none"]).run()
        XCTAssertEqual(summary.failed.count, 1)
        XCTAssertTrue(summary.failed.first?.error.contains("leads outside the output folder") ?? false, summary.failed.first?.error ?? "")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/elsewhere"), [])
    }

    // 10. A tiny picture says why it gave no tiles, alone or in a folder.
    func testTinyImagesSayWhyTheyGaveNoTiles() throws {
        let dir = TestData.scratchDirectory()
        let patches = TestData.path("histolab-tiles")
        let picture = try FileManager.default.contentsOfDirectory(atPath: patches).sorted().first { $0.hasSuffix(".png") || $0.hasSuffix(".jpg") }
        let source = try XCTUnwrap(picture.map { patches + "/" + $0 })
        let image = try RGBImage.read(path: source).resized(width: 96, height: 96)
        try FileManager.default.createDirectory(atPath: dir + "/folder", withIntermediateDirectories: true)
        try image.write(to: dir + "/folder/patch.png")
        let extractor = TileExtractor(options: TilingOptions(grid: TileGridSpec(resolution: .level(0), size: 32)))
        let summary = try extractor.run(slidePath: dir + "/folder/patch.png", outputDirectory: dir + "/single")
        XCTAssertEqual(summary.keptTiles, 0)
        XCTAssertTrue(summary.whyNoTiles?.contains("minimum tissue area") ?? false, summary.whyNoTiles ?? "")
        XCTAssertTrue(summary.whyNoTiles?.contains("--assume-mpp") ?? false)
        var big = TilingOptions(grid: TileGridSpec(resolution: .level(0), size: 256))
        big.showProgress = false
        let tooSmall = try TileExtractor(options: big).run(slidePath: dir + "/folder/patch.png", outputDirectory: dir + "/big")
        XCTAssertTrue(tooSmall.whyNoTiles?.contains("smaller than one tile") ?? false, tooSmall.whyNoTiles ?? "")
        // Folder mode takes the same picture, and the batch says the same.
        XCTAssertEqual(try SlideDiscovery.slides(at: dir + "/folder"), [dir + "/folder/patch.png"])
        let runner = try StageFixtures.stageCommand(TileStage.self, [dir + "/folder", "--out", dir + "/out", "--level", "0", "--size", "32"])
        XCTAssertEqual(try runner.run().completed, 1)
        let html = try String(contentsOfFile: try Report.write(outputRoot: dir + "/out"), encoding: .utf8)
        XCTAssertTrue(html.contains("No tiles: the whole image covers"), "the report says why")
    }

    // 11. Messages: permission denied is not "not a slide format"; a damaged ledger says how to recover.
    func testMessagesNameTheRealProblem() throws {
        let dir = TestData.scratchDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        try Data("this is not SQLite, but it is long enough to look like a file header....".utf8)
            .write(to: URL(fileURLWithPath: dir + "/out/" + RunDescription.ledgerName))
        let manifest = try Manifest.single(TileStage.self, parameters: try StageParameters([:], specs: TileStage.parameters), inputs: [:])
        XCTAssertThrowsError(try PipelineRunner(manifest: manifest, options: options(TestData.cmuSVS, dir + "/out"))) { error in
            XCTAssertTrue("\(error)".contains("Move it aside"), "\(error)")
        }
        XCTAssertEqual(describeError(DecodingError.keyNotFound(TestKey(stringValue: "k"),
                                                               .init(codingPath: [TestKey(stringValue: "a")], debugDescription: ""))),
                       "malformed JSON: missing 'a.k'")

        guard let wsi = PipelineTests.wsiBinary() else { return XCTFail("the wsi executable was not built beside the tests") }
        let unreadable = dir + "/secret.svs"
        try FileManager.default.copyItem(atPath: TestData.cmuSVS, toPath: unreadable)
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: unreadable)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir)
        // Root reads everything: ask as nobody, with a copy of the binary nobody can reach.
        var asUser: [String] = [wsi]
        if geteuid() == 0 {
            let copy = dir + "/wsi"
            try FileManager.default.copyItem(atPath: wsi, toPath: copy)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: copy)
            asUser = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", copy]
        }
        func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
            try PipelineTests.capture(asUser[0], Array(asUser.dropFirst()) + arguments)
        }
        let result = try run(["info", unreadable])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("permission denied"), result.output)
        XCTAssertFalse(result.output.contains("not a slide format"), result.output)

        // A sub-folder that cannot be listed is reported, not silently skipped.
        try FileManager.default.createDirectory(atPath: dir + "/slides/locked", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestData.cmuSVS, toPath: dir + "/slides/visible.svs")
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: dir + "/slides/locked")
        try FileManager.default.createDirectory(atPath: dir + "/listing-out", withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: dir + "/listing-out")
        let listing = try run(["mask-qc", dir + "/slides", "--out", dir + "/listing-out", "--quiet"])
        XCTAssertEqual(listing.status, 1, listing.output)
        XCTAssertTrue(listing.output.contains("slides/locked: cannot list this folder: Permission denied"), listing.output)
    }

    // 12. A grid of millions of positions needs --force.
    func testAbsurdGridsNeedForce() throws {
        let dir = TestData.scratchDirectory()
        let summary = try StageFixtures.stageCommand(TileStage.self, [TestData.cmuSVS, "--out", dir, "--level", "0", "--size", "96", "--overlap", "95",
                                                        "--format", "none"]).run()
        XCTAssertEqual(summary.failed.count, 1)
        XCTAssertTrue(summary.failed.first?.error.contains("positions") ?? false, summary.failed.first?.error ?? "")
        XCTAssertTrue(summary.failed.first?.error.contains("--force") ?? false)
        var arguments = Arguments([TestData.cmuSVS, "--out", dir, "--size", "96", "--overlap", "95", "--force"])
        let (manifest, _) = try StageCommandLine.parse(TileStage.self, &arguments)
        XCTAssertEqual((manifest.stages[0].stage as? TileStage)?.options.maximumGridTiles, .max)
    }
}

private struct TestKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
