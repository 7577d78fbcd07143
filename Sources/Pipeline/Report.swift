import Foundation
import SlideIO
import Storage

/// The static HTML report of a run folder: no scripts, no network, pictures linked relatively.
public enum Report {
    public static let fileName = "index.html"

    public static func write(outputRoot: String) throws -> String {
        let runPath = outputRoot + "/" + RunDescription.fileName
        guard let data = FileManager.default.contents(atPath: runPath) else {
            throw StorageError.cannotOpen(path: runPath, reason: "not a run folder (run 'wsi run' first)")
        }
        let run: RunDescription
        do { run = try JSONDecoder().decode(RunDescription.self, from: data) } catch {
            throw StorageError.malformed(path: runPath, reason: describeError(error))
        }
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
        <p>Manifest <code>\(escape(run.manifest))</code>, \(run.slides.isEmpty ? "" : "\(run.slides.count) slides, ")stages: \(run.stages.map { escape($0.id) }.joined(separator: " → ")).</p>
        """
        html += statusTable(run: run, rows: rows)
        // Batch sections of the global stages that finished.
        for stage in run.stages where stage.scope == .global {
            guard let type = StageRegistry.stage(kind: stage.kind), rows.contains(where: { $0.slide == LedgerRow.wholeBatch && $0.stage == stage.id && $0.status == .done }) else { continue }
            let part = type.report(StageOutputLocation(root: outputRoot, folder: stage.output, stageID: stage.id, slide: nil))
            html += part.html + pictures(part.figures, root: outputRoot)
        }
        for slide in run.slides {
            html += slideSection(SlideDiscovery.stem(of: slide), path: slide, run: run, rows: rows, root: outputRoot)
        }
        html += "</body></html>\n"
        let path = outputRoot + "/" + fileName
        try AtomicFile.write(Data(html.utf8), to: path)
        return path
    }

    static func escape(_ text: String) -> String { escapeHTML(text) }

    static func statusTable(run: RunDescription, rows: [LedgerRow]) -> String {
        var html = "<h2>Status</h2><table><tr><th>slide</th>" + run.stages.map { "<th>\(escape($0.id))</th>" }.joined() + "</tr>"
        let keys = run.slides.map(SlideDiscovery.stem) + (run.stages.contains { $0.scope == .global } ? [LedgerRow.wholeBatch] : [])
        for key in keys {
            html += "<tr><td>\(key == LedgerRow.wholeBatch ? "(whole batch)" : escape(key))</td>"
            for stage in run.stages {
                let applies = (stage.scope == .global) == (key == LedgerRow.wholeBatch)
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
        var figures: [(file: String, caption: String)] = []
        for stage in run.stages {
            // Only finished results: a withdrawn or failed item shows nothing from before.
            guard let type = StageRegistry.stage(kind: stage.kind) else { continue }
            let global = stage.scope == .global
            guard rows.contains(where: { $0.slide == (global ? LedgerRow.wholeBatch : stem) && $0.stage == stage.id && $0.status == .done }) else { continue }
            let part = type.report(StageOutputLocation(root: root, folder: global ? stage.output : stage.output + "/" + stem,
                                                       stageID: stage.id, slide: stem))
            html += part.html
            figures += part.figures
        }
        let timings = rows.filter { $0.slide == stem && $0.status == .done }.map { "\(escape($0.stage)) \(String(format: "%.1f s", $0.seconds))" }
        if !timings.isEmpty { html += "<p>Timings: \(timings.joined(separator: ", "))</p>" }
        return html + pictures(figures, root: root)
    }

    /// The figures that exist, as linked thumbnails.
    static func pictures(_ figures: [(file: String, caption: String)], root: String) -> String {
        let present = figures.filter { FileManager.default.fileExists(atPath: root + "/" + $0.file) }
        guard !present.isEmpty else { return "" }
        return "<div class=\"pictures\">" + present.map {
            "<figure><a href=\"\(escape($0.file))\"><img src=\"\(escape($0.file))\" alt=\"\(escape($0.caption))\"></a><figcaption>\(escape($0.caption))</figcaption></figure>"
        }.joined() + "</div>"
    }
}
