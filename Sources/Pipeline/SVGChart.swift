import Foundation

/// Line charts for the report as inline SVG: axes with ticks and labels, one polyline per
/// series, a legend. No scripts and no external files, so a report opens anywhere.
struct SVGChart {
    struct Series {
        var name: String
        var colour: String
        var points: [(x: Double, y: Double)]
        var dashed = false
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]
    /// Axis ranges; nil takes the data's.
    var xRange: ClosedRange<Double>?
    var yRange: ClosedRange<Double>?
    var width = 600.0, height = 300.0

    /// Tableau's categorical colours, as the class map uses.
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    var svg: String {
        let finite = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        guard !finite.isEmpty else { return "<p>\(escapeHTML(title)): nothing to plot yet.</p>" }
        let xs = xRange ?? Self.padded(finite.map(\.x)), ys = yRange ?? Self.padded(finite.map(\.y))
        // The legend sits right of the plot, so it never hides a curve.
        let legendWidth = min(220, Double(series.map(\.name.count).max() ?? 0) * 6.5 + 16)
        let (left, right, top, bottom) = (58.0, 12.0 + legendWidth, 28.0, 44.0)
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - xs.lowerBound) / (xs.upperBound - xs.lowerBound) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - (y - ys.lowerBound) / (ys.upperBound - ys.lowerBound) * plotHeight }
        var out = String(format: "<svg width=\"%.0f\" height=\"%.0f\" role=\"img\" aria-label=\"%@\" font-family=\"sans-serif\">", width, height,
                         escapeHTML(title))
        out += String(format: "<text x=\"%.0f\" y=\"16\" font-size=\"13\" font-weight=\"bold\">%@</text>", left, escapeHTML(title))
        out += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fff\" stroke=\"#999\"/>", left, top, plotWidth, plotHeight)
        for tick in Self.ticks(xs) {
            out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>", px(tick), top + plotHeight, px(tick),
                          top + plotHeight + 4)
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%@</text>", px(tick), top + plotHeight + 16,
                          Self.label(tick))
        }
        for tick in Self.ticks(ys) {
            out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", left, py(tick), left + plotWidth, py(tick))
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%@</text>", left - 5, py(tick) + 4, Self.label(tick))
        }
        out += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%@</text>", left + plotWidth / 2, height - 6,
                      escapeHTML(xLabel))
        out += String(format: "<text x=\"14\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">%@</text>",
                      top + plotHeight / 2, top + plotHeight / 2, escapeHTML(yLabel))
        for (index, line) in series.enumerated() {
            let points = line.points.filter { $0.x.isFinite && $0.y.isFinite }.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }
            guard !points.isEmpty else { continue }
            out += "<polyline fill=\"none\" stroke=\"\(line.colour)\" stroke-width=\"1.6\"\(line.dashed ? " stroke-dasharray=\"4 3\"" : "") "
                + "points=\"\(points.joined(separator: " "))\"/>"
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"%@\">%@</text>", left + plotWidth + 10,
                          top + 10 + Double(index) * 13, line.colour, escapeHTML(line.name))
        }
        return out + "</svg>"
    }

    static func padded(_ values: [Double]) -> ClosedRange<Double> {
        let low = values.min() ?? 0, high = values.max() ?? 1
        let span = max(high - low, abs(high) * 1e-6, 1e-9)
        return (low - span * 0.05)...(high + span * 0.05)
    }

    /// About five round ticks inside the range.
    static func ticks(_ range: ClosedRange<Double>) -> [Double] {
        let span = range.upperBound - range.lowerBound
        guard span > 0, span.isFinite else { return [range.lowerBound] }
        let raw = span / 5, magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        // Whole multiples of the step, rounded so 3 × 0.2 prints as 0.6.
        let first = Int(ceil(range.lowerBound / step - 1e-9)), last = Int(floor(range.upperBound / step + 1e-9))
        guard first <= last else { return [range.lowerBound] }
        return (first...last).map { (Double($0) * step * 1e9).rounded() / 1e9 }
    }

    static func label(_ value: Double) -> String {
        abs(value) >= 1000 || (abs(value) < 0.01 && value != 0) ? String(format: "%.2g", value) : String(format: "%g", (value * 1000).rounded() / 1000)
    }
}
