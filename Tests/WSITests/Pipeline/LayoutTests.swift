import Foundation
@testable import Pipeline
import XCTest

/// The module graph as the README and Package.swift state it: each target depends on exactly
/// what it imports, and no module imports one above it in the layering.
final class LayoutTests: XCTestCase {
    func testPackageDependenciesEqualImports() throws {
        let root = FrontDoorTests.repository
        let package = try String(contentsOfFile: root + "/Package.swift", encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: #"\.(?:target|executableTarget)\(name: "(\w+)"(?:, dependencies: \[([^\]]*)\])?"#)
        var declared: [String: Set<String>] = [:]
        for match in pattern.matches(in: package, range: NSRange(package.startIndex..., in: package)) {
            guard let name = Range(match.range(at: 1), in: package).map({ String(package[$0]) }) else { continue }
            let list = Range(match.range(at: 2), in: package).map { String(package[$0]) } ?? ""
            declared[name] = Set(list.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \"\n")) }.filter { !$0.isEmpty })
        }
        XCTAssertGreaterThan(declared.count, 10)
        let system: Set<String> = ["Foundation", "Dispatch", "Glibc"]
        for (target, dependencies) in declared {
            let folder = root + "/Sources/" + target
            guard let files = FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] else { continue }
            var imports = Set<String>()
            for file in files where file.hasSuffix(".swift") {
                let text = try String(contentsOfFile: folder + "/" + file, encoding: .utf8)
                for line in text.split(separator: "\n") {
                    // `import X`, or with an access level: `internal import X`.
                    let words = line.split(separator: " ")
                    guard let at = words.firstIndex(of: "import"), at <= 1, at + 1 < words.count,
                          at == 0 || ["public", "package", "internal", "fileprivate", "private"].contains(words[0]) else { continue }
                    imports.insert(String(words[at + 1]))
                }
            }
            if files.contains(where: { $0.hasSuffix(".swift") }) {
                XCTAssertEqual(imports.subtracting(system), dependencies, "\(target): Package.swift dependencies differ from its imports")
            }
        }
        let order = ["Concurrency", "Console", "Cluster", "Storage", "Results", "Annotations", "Imaging", "SlideIO", "Tissue", "Tiling", "NN", "ViT", "SDMAE", "Predict", "MIL", "Heatmap", "Pipeline", "wsi"]
        for (index, target) in order.enumerated() {
            let above = Set(order[(index + 1)...])
            XCTAssertTrue((declared[target] ?? []).isDisjoint(with: above), "\(target) depends on a module above it")
        }
    }
}
