import Foundation

/// Paths to the real slides copied under Tests/Data (see its README for provenance).
enum TestData {
    /// The repository's root: this file lies in Tests/WSITests.
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let root = repository + "/Tests/Data"

    static func path(_ relative: String) -> String { root + "/" + relative }

    static let cmuSVS = path("cmu1-small-region-svs/CMU-1-Small-Region.svs")
    static let cmuTIFF = path("cmu1-small-region-generic-tiff/CMU-1-Small-Region.jpeg.tiff")
    static let tcgaSVS = path("tcga-cr-7395-svs/tcga-cr-7395-01a-01-ts1.svs")

    /// `openslide-show-properties` output saved beside each slide, as a dictionary.
    static func recordedProperties(_ folder: String) throws -> [String: String] {
        let text = try String(contentsOfFile: path(folder + "/openslide-properties.txt"), encoding: .utf8)
        var properties: [String: String] = [:]
        var key: String?
        var value = ""
        // Values are quoted and may span lines (Aperio descriptions).
        for line in text.components(separatedBy: "\n") {
            if key == nil, let colon = line.range(of: ": '") {
                key = String(line[..<colon.lowerBound])
                value = String(line[colon.upperBound...])
            } else if key != nil {
                value += "\n" + line
            }
            if let k = key, value.hasSuffix("'") {
                properties[k] = String(value.dropLast())
                key = nil
            }
        }
        return properties
    }

    /// A fresh folder for one test, under one folder per test process that is deleted when the
    /// process exits (runs used to leave hundreds of megabytes each in /tmp). Set
    /// WSI_KEEP_TEST_FILES=1 to keep them for a look after a failure.
    static func scratchDirectory(_ name: String = #function) -> String {
        _ = removeScratchRootAtExit
        let path = scratchRoot + "/" + name.filter { $0.isLetter || $0.isNumber }
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A pretraining run's metrics.csv: per step, the numbers before the collapse flag (step,
    /// epoch, lr, loss, l_rec, l_sd, teacher_entropy, prototype_entropy, grad_norm).
    static func metricsColumns(_ path: String) throws -> [[Double]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",").prefix(9).compactMap { Double($0) } }
    }

    private static let scratchRoot = FileManager.default.temporaryDirectory
        .appendingPathComponent("wsi-tests-\(getpid())").path

    private static let removeScratchRootAtExit: Void = {
        guard ProcessInfo.processInfo.environment["WSI_KEEP_TEST_FILES"] == nil else { return }
        atexit { try? FileManager.default.removeItem(atPath: TestData.scratchRoot) }
    }()
}
