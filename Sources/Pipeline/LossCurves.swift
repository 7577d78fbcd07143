import Foundation
import SDMAE

/// Pretraining curves for the report.
enum LossCurves {
    /// Loss parts and teacher entropy per step as inline SVG polylines.
    static func svg(metricsPath: String) -> String {
        guard let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else { return "<p>No metrics.csv yet.</p>" }
        let lines = text.split(separator: "\n")
        guard let header = lines.first?.split(separator: ",").map(String.init) else { return "" }
        let fields = lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            .filter { $0.count == header.count }
        // Numbers where a column holds numbers; the collapse column holds words.
        let rows = fields.map { $0.map { Double($0) ?? .nan } }
        guard rows.count >= 2, let stepColumn = header.firstIndex(of: "step") else { return "<p>Not enough steps to plot.</p>" }
        let series: [(String, String)] = [("loss", "#222"), ("l_rec", "#1f77b4"), ("l_sd", "#d62728"), ("teacher_entropy", "#2ca02c"),
                                          ("prototype_entropy", "#9467bd")]
        let width = 640.0, height = 260.0, pad = 40.0
        let steps = rows.map { $0[stepColumn] }
        let minStep = steps.min() ?? 0, maxStep = max(steps.max() ?? 0, minStep + 1)
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"pretraining curves\">"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"#fff\" stroke=\"#ccc\"/>"
        var legend = ""
        for (index, (name, colour)) in series.enumerated() {
            guard let column = header.firstIndex(of: name) else { continue }
            let values = rows.map { $0[column] }
            let low = values.min() ?? 0, high = max(values.max() ?? 0, low + 1e-9)
            let points = zip(steps, values).map { step, v in
                String(format: "%.1f,%.1f", pad + (step - minStep) / (maxStep - minStep) * (width - 2 * pad),
                       height - pad - (v - low) / (high - low) * (height - 2 * pad))
            }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"\(points)\"/>"
            legend += "<text x=\"\(Int(pad) + (index % 2) * 280)\" y=\"\(16 + (index / 2) * 15)\" fill=\"\(colour)\" font-size=\"12\">\(name) \(String(format: "%.3g→%.3g", values.first ?? 0, values.last ?? 0))</text>"
        }
        svg += legend
        svg += "<text x=\"\(Int(pad))\" y=\"\(Int(height) - 10)\" font-size=\"11\">step \(Int(minStep))</text>"
        svg += "<text x=\"\(Int(width - pad) - 60)\" y=\"\(Int(height) - 10)\" font-size=\"11\">step \(Int(maxStep))</text></svg>"
        var notes = "<p>Each curve scaled to its own range (first → last value in the legend). teacher_entropy is the mean "
            + "entropy of each image's teacher distribution, prototype_entropy that of the batch mean (e^H prototypes in use).</p>"
        if let column = header.firstIndex(of: "collapse") {
            let flagged = fields.filter { $0[column] != CollapseWatch.Kind.none.rawValue }
            if let last = fields.last, last[column] != CollapseWatch.Kind.none.rawValue {
                notes += "<p class=\"error\">Self-distillation collapsed (\(escapeHTML(last[column])) teacher) and was still collapsed at the last "
                    + "step; \(flagged.count) of \(fields.count) steps flagged. L_sd carried no information about the images then.</p>"
            } else if !flagged.isEmpty {
                notes += "<p class=\"error\">\(flagged.count) of \(fields.count) steps showed a collapsed teacher.</p>"
            }
        }
        return svg + notes
    }
}
