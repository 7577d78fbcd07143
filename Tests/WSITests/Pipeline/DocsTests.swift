import Foundation
import XCTest

/// The README is a front page and every link in it and in docs/ leads somewhere.
final class DocsTests: XCTestCase {
    func testReadmeIsAFrontPageAndEveryLinkResolves() throws {
        let root = FrontDoorTests.repository
        let readme = try String(contentsOfFile: root + "/README.md", encoding: .utf8)
        XCTAssertLessThanOrEqual(readme.split(separator: "\n", omittingEmptySubsequences: false).count, 200, "README.md stays a front page")
        let docs = (FileManager.default.enumerator(atPath: root + "/docs")?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".md") }
        XCTAssertGreaterThanOrEqual(docs.count, 10)
        for page in ["README.md"] + docs.map({ "docs/" + $0 }) {
            let text = try String(contentsOfFile: root + "/" + page, encoding: .utf8)
            let folder = URL(fileURLWithPath: root + "/" + page).deletingLastPathComponent()
            var rest = text[...]
            while let open = rest.range(of: "](") {
                let after = rest[open.upperBound...]
                guard let close = after.firstIndex(of: ")") else { break }
                let target = String(after[..<close]).split(separator: "#").first.map(String.init) ?? ""
                rest = after[close...]
                guard !target.isEmpty, !target.contains("://") else { continue }
                XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent(target).path), "\(page) links to \(target), which does not exist")
            }
        }
    }
}
