import Foundation
import SDMAE

/// Pretraining curves for the report.
enum LossCurves {
    /// Loss parts per step, and the teacher's entropies when self-distillation trains, as charts
    /// with axes.
    static func svg(metricsPath: String) -> String {
        guard let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else { return "<p>No metrics.csv yet.</p>" }
        let lines = text.split(separator: "\n")
        guard let header = lines.first?.split(separator: ",").map(String.init) else { return "" }
        let fields = lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            .filter { $0.count == header.count }
        // Numbers where a column holds numbers; the collapse column holds words.
        let rows = fields.map { $0.map { Double($0) ?? .nan } }
        guard rows.count >= 2, let stepColumn = header.firstIndex(of: "step") else { return "<p>Not enough steps to plot.</p>" }
        func series(_ name: String, _ colour: String) -> SVGChart.Series? {
            guard let column = header.firstIndex(of: name) else { return nil }
            let points = zip(rows.map { $0[stepColumn] }, rows.map { $0[column] }).map { (x: $0, y: $1) }
            return SVGChart.Series(name: name, colour: colour, points: points)
        }
        // The plain MAE recipe trains no self-distillation: its columns hold zeros, not curves.
        let distills = series("l_sd", "")?.points.contains { $0.y.isFinite && $0.y != 0 } ?? false
        let losses = [series("loss", "#222"), series("l_rec", "#1f77b4"), distills ? series("l_sd", "#d62728") : nil].compactMap { $0 }
        var svg = SVGChart(title: "Pretraining loss", xLabel: "step", yLabel: "loss", series: losses).svg
        if distills {
            let entropies = [series("teacher_entropy", "#2ca02c"), series("prototype_entropy", "#9467bd")].compactMap { $0 }
            svg += SVGChart(title: "Teacher entropies", xLabel: "step", yLabel: "entropy (nats)", series: entropies).svg
        }
        var notes = distills ? "<p>teacher_entropy is the mean entropy of each image's teacher distribution, prototype_entropy "
            + "that of the batch mean (e^H prototypes in use).</p>" : ""
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
