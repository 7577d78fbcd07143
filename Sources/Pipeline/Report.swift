import Foundation
import Heatmap
import Predict
import SlideIO
import Storage
import Tiling

/// The static HTML report of a run folder: no scripts, no network, pictures linked relatively.
public enum Report {
    public static let fileName = "index.html"

    public static func write(outputRoot: String) throws -> String {
        let runPath = outputRoot + "/" + RunDescription.fileName
        guard let data = FileManager.default.contents(atPath: runPath) else {
            throw StorageError.cannotOpen(path: runPath, reason: "not a run folder (run 'wsi run' first)")
        }
        let run = try JSONDecoder().decode(RunDescription.self, from: data)
        let rows = try Ledger(path: outputRoot + "/" + RunDescription.ledgerName).allRows()
        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(run.name)) — wsi report</title>
        <style>
        body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
        h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
        table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
        .done { color: #17692f; } .failed { color: #b00020; font-weight: bold; } .running { color: #a66b00; }
        .pictures { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; } figure img { max-width: 420px; border: 1px solid #ccc; }
        figcaption { font-size: 0.85em; color: #555; } .error { background: #fdecea; padding: 0.5em; white-space: pre-wrap; }
        </style></head><body>
        <h1>\(escape(run.name))</h1>
        <p>Manifest <code>\(escape(run.manifest))</code>, \(run.slides.count) slides, stages: \(run.stages.map { escape($0.id) }.joined(separator: " → ")).</p>
        """
        html += statusTable(run: run, rows: rows)
        for stage in run.stages where stage.kind == "pretrain" {
            html += "<h2>Pretraining: \(escape(stage.id))</h2>"
            html += lossCurves(metricsPath: outputRoot + "/" + stage.output + "/metrics.csv")
        }
        for stage in run.stages where stage.kind == "train-classifier" {
            html += classifierSection(stage, root: outputRoot)
        }
        for slide in run.slides {
            html += slideSection(SlideDiscovery.stem(of: slide), path: slide, run: run, rows: rows, root: outputRoot)
        }
        html += "</body></html>\n"
        let path = outputRoot + "/" + fileName
        try AtomicFile.write(Data(html.utf8), to: path)
        return path
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func statusTable(run: RunDescription, rows: [LedgerRow]) -> String {
        var html = "<h2>Status</h2><table><tr><th>slide</th>" + run.stages.map { "<th>\(escape($0.id))</th>" }.joined() + "</tr>"
        let keys = run.slides.map(SlideDiscovery.stem) + (run.stages.contains { $0.scope == StageScope.global.rawValue } ? ["*"] : [])
        for key in keys {
            html += "<tr><td>\(key == "*" ? "(whole batch)" : escape(key))</td>"
            for stage in run.stages {
                let applies = (stage.scope == StageScope.global.rawValue) == (key == "*")
                guard applies else { html += "<td></td>"; continue }
                if let row = rows.first(where: { $0.slide == key && $0.stage == stage.id }) {
                    html += "<td class=\"\(row.status.rawValue)\">\(row.status.rawValue) \(String(format: "%.1f s", row.seconds))</td>"
                } else {
                    html += "<td>—</td>"
                }
            }
            html += "</tr>"
        }
        return html + "</table>"
    }

    static func slideSection(_ stem: String, path: String, run: RunDescription, rows: [LedgerRow], root: String) -> String {
        var html = "<h2 id=\"\(escape(stem))\">\(escape(stem))</h2><p><code>\(escape(path))</code></p>"
        for row in rows where row.slide == stem && row.status == .failed {
            html += "<p class=\"error\">\(escape(row.stage)) failed: \(escape(row.error))</p>"
        }
        var figures: [(String, String)] = []
        for stage in run.stages {
            let folder = stage.output + "/" + stem
            switch stage.kind {
            case "tile":
                if let data = FileManager.default.contents(atPath: root + "/" + folder + "/" + TilingFiles.summary),
                   let summary = try? JSONDecoder().decode(TilingSummary.self, from: data) {
                    html += "<table><tr><th>tiles kept</th><th>on tissue</th><th>in grid</th><th>patch µm/px</th><th>read level</th><th>rejected</th><th>tiling s</th></tr><tr>"
                    html += "<td>\(summary.keptTiles)</td><td>\(summary.tissueTiles)</td><td>\(summary.gridTiles)</td>"
                    html += "<td>\(summary.outputMicronsPerPixel.map { String(format: "%.3f", $0) } ?? "unknown")</td><td>\(summary.readLevel)</td>"
                    html += "<td>\(summary.rejected.isEmpty ? "none" : summary.rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))</td>"
                    html += String(format: "<td>%.1f</td></tr></table>", summary.seconds)
                }
                figures.append((folder + "/" + TilingFiles.qcPicture, "tiles kept (\(stage.id))"))
            case "mask-qc":
                figures.append((folder + "/" + MaskQCStage.thumbnailName, "thumbnail"))
                figures.append((folder + "/" + MaskQCStage.pictureName, "tissue mask (\(stage.id))"))
            case "heatmap":
                let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + folder)) ?? []
                for name in names.sorted() where name.hasPrefix("heatmap-") && name.hasSuffix(".png") {
                    figures.append((folder + "/" + name, "\(name.dropFirst(8).dropLast(4)) (\(stage.id))"))
                }
            case "aggregate":
                let labelPath = root + "/" + stage.output + "/" + stem + ".json"
                if let data = FileManager.default.contents(atPath: labelPath), let label = try? JSONDecoder().decode(SlideLabel.self, from: data) {
                    html += "<p>Label <strong>\(escape(label.label))</strong> (\(escape(label.rule)), \(label.tiles) tiles): "
                    html += label.scores.sorted { $0.key < $1.key }.map { "\(escape($0.key)) \(String(format: "%.3f", $0.value))" }.joined(separator: ", ") + "</p>"
                }
            default:
                break
            }
        }
        let timings = rows.filter { $0.slide == stem && $0.status == .done }.map { "\(escape($0.stage)) \(String(format: "%.1f s", $0.seconds))" }
        if !timings.isEmpty { html += "<p>Timings: \(timings.joined(separator: ", "))</p>" }
        let present = figures.filter { FileManager.default.fileExists(atPath: root + "/" + $0.0) }
        if !present.isEmpty {
            html += "<div class=\"pictures\">" + present.map {
                "<figure><a href=\"\(escape($0.0))\"><img src=\"\(escape($0.0))\" alt=\"\(escape($0.1))\"></a><figcaption>\(escape($0.1))</figcaption></figure>"
            }.joined() + "</div>"
        }
        return html
    }

    static func classifierSection(_ stage: RunDescription.StageInfo, root: String) -> String {
        struct Metrics: Decodable { var trainingSamples: Int; var linearProbe: ClassificationReport; var knn20Cosine: ClassificationReport }
        guard let data = FileManager.default.contents(atPath: root + "/" + stage.output + "/" + TrainClassifierStage.metricsName),
              let metrics = try? JSONDecoder().decode(Metrics.self, from: data) else { return "" }
        var html = "<h2>Classifier: \(escape(stage.id))</h2><p>\(metrics.trainingSamples) training patches, "
            + "\(metrics.linearProbe.samples) held out.</p><table><tr><th>evaluation</th><th>accuracy</th><th>balanced accuracy</th>"
            + metrics.linearProbe.classes.map { "<th>\(escape($0)) precision / recall</th>" }.joined() + "</tr>"
        for (name, report) in [("linear probe", metrics.linearProbe), ("kNN (k=20, cosine)", metrics.knn20Cosine)] {
            html += "<tr><td>\(name)</td>" + String(format: "<td>%.3f</td><td>%.3f</td>", report.accuracy, report.balancedAccuracy)
            html += zip(report.precision, report.recall).map { String(format: "<td>%.3f / %.3f</td>", $0, $1) }.joined() + "</tr>"
        }
        return html + "</table>"
    }

    /// Loss parts and teacher entropy per step as inline SVG polylines.
    static func lossCurves(metricsPath: String) -> String {
        guard let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else { return "<p>No metrics.csv yet.</p>" }
        let lines = text.split(separator: "\n")
        guard let header = lines.first?.split(separator: ",").map(String.init) else { return "" }
        let rows = lines.dropFirst().map { $0.split(separator: ",").compactMap { Double($0) } }.filter { $0.count == header.count }
        guard rows.count >= 2, let stepColumn = header.firstIndex(of: "step") else { return "<p>Not enough steps to plot.</p>" }
        let series: [(String, String)] = [("loss", "#222"), ("l_rec", "#1f77b4"), ("l_sd", "#d62728"), ("teacher_entropy", "#2ca02c")]
        let width = 640.0, height = 260.0, pad = 40.0
        let steps = rows.map { $0[stepColumn] }
        let (minStep, maxStep) = (steps.min()!, max(steps.max()!, steps.min()! + 1))
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"pretraining curves\">"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"#fff\" stroke=\"#ccc\"/>"
        var legend = ""
        for (index, (name, colour)) in series.enumerated() {
            guard let column = header.firstIndex(of: name) else { continue }
            let values = rows.map { $0[column] }
            let low = values.min()!, high = max(values.max()!, values.min()! + 1e-9)
            let points = zip(steps, values).map { step, v in
                String(format: "%.1f,%.1f", pad + (step - minStep) / (maxStep - minStep) * (width - 2 * pad),
                       height - pad - (v - low) / (high - low) * (height - 2 * pad))
            }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"\(points)\"/>"
            legend += "<text x=\"\(Int(pad) + (index % 2) * 280)\" y=\"\(16 + (index / 2) * 15)\" fill=\"\(colour)\" font-size=\"12\">\(name) \(String(format: "%.3g→%.3g", values.first!, values.last!))</text>"
        }
        svg += legend
        svg += "<text x=\"\(Int(pad))\" y=\"\(Int(height) - 10)\" font-size=\"11\">step \(Int(minStep))</text>"
        svg += "<text x=\"\(Int(width - pad) - 60)\" y=\"\(Int(height) - 10)\" font-size=\"11\">step \(Int(maxStep))</text></svg>"
        return svg + "<p>Each curve scaled to its own range (first → last value in the legend).</p>"
    }
}
