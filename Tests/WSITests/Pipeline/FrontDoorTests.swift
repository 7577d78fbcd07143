import Foundation
@testable import Pipeline
import XCTest

/// One declaration per option: the command line, the manifest validator, `--help`, `wsi stages`
/// and the README all come from it or are checked against it here.
final class FrontDoorTests: XCTestCase {
    static let repository = TestData.repository

    func manifestError(_ text: String, file: String = "m.yaml") -> ManifestError? {
        let dir = TestData.scratchDirectory("front-door-manifests")
        let path = dir + "/" + file
        try? text.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try Manifest.load(path: path)
            return nil
        } catch {
            return error as? ManifestError
        }
    }

    func usageError(_ kind: String, _ tokens: [String]) -> String? {
        guard let type = StageRegistry.stage(kind: kind) else { return "no stage \(kind)" }
        var arguments = Arguments(tokens)
        do {
            _ = try StageCommandLine.parse(type, &arguments)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// A value just outside each declared range (or an unknown choice) is refused by both doors,
    /// each naming the option, the manifest with the value's line and column.
    func testEveryDeclaredLimitIsEnforcedByBothDoors() throws {
        let slide = TestData.cmuSVS
        for type in StageRegistry.all {
            // Required inputs and parameters, so only the value under test is wrong.
            let inputs = type.inputs.filter(\.required).flatMap { ["--" + $0.name, slide] }
            let required = type.parameters.filter(\.required).flatMap { [$0.flag, TestData.root] }
            let manifestInputs = type.inputs.filter(\.required).map { "\($0.name): \(slide)" }
            for spec in type.parameters {
                var bad: [String] = []
                switch spec.type {
                case let .int(range): bad = [String(range.lowerBound - 1), String(range.upperBound + 1)]
                case let .double(range): bad = [String(range.lowerBound - 1e-3 * max(1, abs(range.lowerBound))), String(range.upperBound * 1.01 + 1)]
                case .choice: bad = ["no-such-choice"]
                case .path, .nameOrPath: bad = ["/no/such/path"]
                case .bool: bad = ["maybe"]
                case .string, .strings: continue
                }
                for value in bad {
                    let positional = type.scope == .perSlide ? [slide] : []
                    if case .bool = spec.type {} else {
                        let message = usageError(type.kind, positional + ["--out", "/tmp/x"] + inputs + required + [spec.flag, value])
                        XCTAssertNotNil(message, "\(type.kind) \(spec.flag) \(value) accepted on the command line")
                        XCTAssertTrue(message?.contains(spec.flag) ?? false, "\(message ?? "")")
                    }
                    guard spec.inManifest else { continue }
                    let params = (type.parameters.filter(\.required).filter { $0.name != spec.name }.map { "\($0.name): \(TestData.root)" }
                                  + ["\(spec.name): \(value)"]).joined(separator: ", ")
                    let text = "stages:\n  - stage: \(type.kind)\n    inputs: {\(manifestInputs.joined(separator: ", "))}\n    params: {\(params)}\n"
                    let error = manifestError(text)
                    XCTAssertNotNil(error, "\(type.kind).\(spec.name): \(value) accepted in a manifest")
                    XCTAssertEqual(error?.line, 4, "\(error.map { "\($0)" } ?? "")")
                    let column = (text.components(separatedBy: "\n")[3] as NSString).range(of: "\(spec.name): \(value)").location + spec.name.count + 3
                    XCTAssertEqual(error?.column, column, "\(error.map { "\($0)" } ?? "")")
                    XCTAssertTrue(error?.message.contains("\(type.kind).\(spec.name)") ?? false, "\(error.map { "\($0)" } ?? "")")
                }
            }
        }
    }

    /// The cases that used to pass a manifest and misbehave at run time.
    func testReportedBadValuesAreRefusedAtTheirLocation() {
        let cases: [(String, String)] = [
            ("stages:\n  - stage: aggregate\n    inputs: {predictions: /tmp}\n    params: {k: 0}\n", "aggregate.k must be in 1...1000000"),
            ("stages:\n  - stage: aggregate\n    inputs: {predictions: /tmp}\n    params: {k: -5}\n", "aggregate.k must be in"),
            ("stages:\n  - stage: aggregate\n    inputs: {predictions: /tmp}\n    params: {rule: fraction, threshold: 7}\n", "aggregate.threshold must be in 0...1"),
            ("stages:\n  - stage: tile\n    params: {tissue_threshold: 7}\n", "tile.tissue_threshold must be in 0...1"),
            ("stages:\n  - stage: tile\n    params: {assume_mpp: -2}\n", "tile.assume_mpp must be in"),
            ("stages:\n  - stage: tile\n    params: {mpp: 0}\n", "tile.mpp must be in"),
            ("stages:\n  - stage: tile\n    params: {level: 99}\n", "tile.level must be in 0...64"),
            ("stages:\n  - stage: tile\n    params: {threads: 4}\n", "'threads' is a command-line option"),
        ]
        for (text, fragment) in cases {
            let error = manifestError(text)
            XCTAssertNotNil(error, text)
            XCTAssertTrue(error?.message.contains(fragment) ?? false, "\(error.map { "\($0)" } ?? "nil") should say \(fragment)")
            XCTAssertGreaterThan(error?.line ?? 0, 1)
        }
        XCTAssertTrue(usageError("aggregate", ["--out", "/tmp/x", "--predictions", "/tmp", "--k", "0"])?.contains("--k must be in 1...1000000") ?? false)
        XCTAssertTrue(usageError("tile", [TestData.cmuSVS, "--out", "/tmp/x", "--size", "256", "--size", "128"])?.contains("--size given twice") ?? false)
        XCTAssertTrue(usageError("tile", [TestData.cmuSVS, "--out", "/tmp/x", "--sise", "256"])?.contains("unknown option --sise") ?? false)
        XCTAssertTrue(usageError("tile", [TestData.cmuSVS, "--out", "/tmp/x", "--mpp", "0.5", "--level", "0"])?.contains("only one of") ?? false)
    }

    /// The same options through either door give the same stage parameters (so the ledger sees
    /// the same work) and the same defaults.
    func testCommandLineAndManifestMeanTheSame() throws {
        let dir = TestData.scratchDirectory()
        let path = dir + "/m.yaml"
        try "stages:\n  - stage: tile\n    params: {size: 128, format: shard, colour_filter: false, no_upsample: true}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let fromManifest = try Manifest.load(path: path).stages[0]
        // `--no-colour-filter` turns an option off; `--no-upsample` (an option named no_upsample) turns one on.
        var arguments = Arguments([TestData.cmuSVS, "--out", dir + "/out", "--size", "128", "--format", "shard", "--no-colour-filter", "--no-upsample",
                                   "--threads", "2"])
        let (manifest, options) = try StageCommandLine.parse(TileStage.self, &arguments)
        let fromCommandLine = manifest.stages[0]
        let manifestSpecs = TileStage.parameters.filter(\.inManifest).map(\.name)
        XCTAssertEqual(fromManifest.parameters.fingerprint(of: manifestSpecs), fromCommandLine.parameters.fingerprint(of: manifestSpecs))
        XCTAssertEqual(fromManifest.parameters[TileStage.format], .shard)
        XCTAssertEqual(fromCommandLine.parameters[TileStage.noUpsample], true)
        XCTAssertEqual(fromCommandLine.parameters[TileStage.colourFilter], false)
        XCTAssertEqual(fromCommandLine.output, "tile")
        XCTAssertEqual(options.output, dir + "/out")
        let defaults = try StageParameters([:], specs: TileStage.parameters)
        XCTAssertEqual(defaults[TileStage.size], 256)
        XCTAssertEqual(defaults[TileStage.format], .jpeg, "one default, whichever door")
    }

    /// `wsi <stage> --help` and `wsi stages` print what the declarations generate, and the
    /// stage reference in docs/stages.md is exactly the generated one.
    func testHelpStagesAndReadmeAgreeWithTheDeclarations() throws {
        let readme = try String(contentsOfFile: Self.repository + "/docs/stages.md", encoding: .utf8)
        let begin = "<!-- stages:begin (generated by 'wsi stages --markdown'; a test keeps it equal) -->\n"
        let end = "<!-- stages:end -->"
        guard let start = readme.range(of: begin), let stop = readme.range(of: end) else {
            return XCTFail("docs/stages.md has no generated stage reference")
        }
        XCTAssertEqual(String(readme[start.upperBound..<stop.lowerBound]), StageCommandLine.markdownReference(),
                       "docs/stages.md is stale: paste 'wsi stages --markdown' between the markers")
        guard let wsi = PipelineTests.wsiBinary() else { return XCTFail("the wsi executable was not built beside the tests") }
        for type in StageRegistry.all {
            let help = try PipelineTests.capture(wsi, [type.kind, "--help"])
            XCTAssertEqual(help.status, 0)
            XCTAssertEqual(help.output, StageCommandLine.spec(type).usage + "\n")
            for spec in type.parameters {
                XCTAssertTrue(help.output.contains(spec.flag), "\(type.kind) --help lacks \(spec.flag)")
                if let value = spec.defaultValue, value != .bool(false), value != .bool(true) {
                    XCTAssertTrue(help.output.contains("default \(value)"), "\(type.kind) --help lacks the default of \(spec.flag)")
                }
            }
        }
        let stages = try PipelineTests.capture(wsi, ["stages"])
        XCTAssertEqual(stages.output, StageCommandLine.textReference())
        for type in StageRegistry.all {
            for spec in type.parameters { XCTAssertTrue(stages.output.contains("  \(spec.name) ("), "wsi stages lacks \(type.kind).\(spec.name)") }
        }
    }

    /// Repeated and stray flags, and exit statuses, through the real binary.
    func testCommandLineMistakesExitWithStatusTwo() throws {
        guard let wsi = PipelineTests.wsiBinary() else { return XCTFail("the wsi executable was not built beside the tests") }
        let twice = try PipelineTests.capture(wsi, ["tile", TestData.cmuSVS, "--out", "/tmp/x", "--size", "64", "--size=96"])
        XCTAssertEqual(twice.status, 2)
        XCTAssertTrue(twice.output.contains("--size given twice"), twice.output)
        let range = try PipelineTests.capture(wsi, ["tile", TestData.cmuSVS, "--out", "/tmp/x", "--assume-mpp", "-2"])
        XCTAssertEqual(range.status, 2)
        XCTAssertTrue(range.output.contains("--assume-mpp must be in 0.01...1000"), range.output)
        let missing = try PipelineTests.capture(wsi, ["predict", TestData.cmuSVS, "--out", "/tmp/x"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.output.contains("--tiles PATH is required"), missing.output)
    }
}
