@testable import Pipeline
import Predict
import XCTest
import Results

/// The report's charts: ROC corners from ranked scores, axes with round ticks.
final class ReportChartsTests: XCTestCase {
    func testROCCurveCornersAndChartAxes() {
        let curve = ROC.curve(scores: [0.9, 0.8, 0.7, 0.1], positive: [true, false, true, false])
        XCTAssertEqual(curve.map(\.falsePositiveRate), [0, 0, 0.5, 0.5, 1])
        XCTAssertEqual(curve.map(\.truePositiveRate), [0, 0.5, 0.5, 1, 1])
        let tied = ROC.curve(scores: [0.5, 0.5], positive: [true, false])
        XCTAssertEqual(tied.map(\.falsePositiveRate), [0, 1], "tied scores make one diagonal step")
        XCTAssertTrue(ROC.curve(scores: [0.3], positive: [true]).isEmpty, "no negative: no curve")

        XCTAssertEqual(SVGChart.ticks(0...1), [0, 0.2, 0.4, 0.6, 0.8, 1])
        XCTAssertEqual(SVGChart.ticks(0.35...0.92), [0.4, 0.6, 0.8])
        let chart = SVGChart(title: "Loss", xLabel: "epoch", yLabel: "cross-entropy",
                             series: [.init(name: "fold-1 train", colour: "#1f77b4", points: [(1, 0.7), (2, 0.5)])]).svg
        XCTAssertTrue(chart.hasPrefix("<svg") && chart.contains(">cross-entropy</text>") && chart.contains(">epoch</text>"), "labelled axes")
        XCTAssertTrue(chart.contains("<polyline"))
    }
}
