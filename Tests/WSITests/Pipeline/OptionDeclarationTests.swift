import Foundation
@testable import Pipeline
import XCTest

/// Stages read options through their declarations; these hold the declarations complete.
final class OptionDeclarationTests: XCTestCase {
    /// Building a stage reads every option it has; one read but not declared stops the process
    /// (the option would always read as its default, whatever a manifest said).
    func testEveryStageBuildsFromItsDeclaredDefaults() throws {
        for type in StageRegistry.all {
            var given: [String: ParameterValue] = [:]
            for spec in type.parameters where spec.required { given[spec.name] = .string(TestData.root) }
            let parameters = try StageParameters(given, specs: type.parameters)
            XCTAssertNoThrow(try type.init(parameters), type.kind)
        }
    }

    /// An `Option` declared in a stage's file but left out of its `parameters` could be read, but
    /// never set: the command line and manifests would not know it.
    func testEveryDeclaredOptionIsListed() throws {
        let folder = TestData.repository + "/Sources/Pipeline/Stages"
        let declaration = try NSRegularExpression(pattern: #"static let (\w+) = Option<"#)
        var checked = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) where name.hasSuffix("Stage.swift") {
            let text = try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
            for match in declaration.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let option = (text as NSString).substring(with: match.range(at: 1))
                XCTAssertTrue(text.contains("\(option).spec"), "\(name): option \(option) is declared but not in parameters")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 60)
    }

    func testValuesArriveTyped() throws {
        let specs = [AggregateStage.rule.spec, AggregateStage.k.spec, AggregateStage.threshold.spec]
        let parameters = try StageParameters(["rule": .string("fraction"), "threshold": .double(0.3)], specs: specs)
        XCTAssertEqual(parameters[AggregateStage.rule], .fraction)
        XCTAssertEqual(parameters[AggregateStage.k], 50, "the declared default")
        XCTAssertEqual(try AggregateStage(parameters).rule, .fractionAbove(0.3))
        let tile = try StageParameters([:], specs: TileStage.parameters)
        XCTAssertNil(tile[TileStage.mpp])
        XCTAssertEqual(tile[TileStage.format], .jpeg)
        XCTAssertEqual(tile[TileStage.roiClass], [])
    }
}
