import Foundation
@testable import NN
import XCTest

/// Central finite differences against every layer's analytic backward. The probe loss is
/// Σ wᵢ·outᵢ with fixed random weights, accumulated in double precision; float32 forward passes
/// limit agreement to about 1e-3, far below what a wrong formula produces.
class GradientCheckCase: XCTestCase {
    var generator = SeededGenerator(seed: 42)

    func randomBuffer(_ count: Int, scale: Float = 1) -> Buffer {
        let buffer = Buffer(count: count)
        for i in 0..<count { buffer[i] = generator.normal() * scale }
        return buffer
    }

    /// Checks d(probe)/d(value[i]) for a few indices of `values` against `analytic`.
    func check(_ name: String, values: UnsafeMutablePointer<Float>, count: Int, analytic: [Float],
               probe: () throws -> Double, samples: Int = 12, step: Float = 1e-2, file: StaticString = #filePath, line: UInt = #line) throws {
        var worst: Float = 0
        let scale = max(analytic.map(abs).max() ?? 0, 1e-3)
        for s in 0..<min(samples, count) {
            let i = s == 0 ? 0 : Int(generator.next() % UInt64(count))
            let saved = values[i]
            values[i] = saved + step
            let plus = try probe()
            values[i] = saved - step
            let minus = try probe()
            values[i] = saved
            let numeric = Float((plus - minus) / Double(2 * step))
            worst = max(worst, abs(numeric - analytic[i]) / scale)
            if ProcessInfo.processInfo.environment["GRADCHECK_VERBOSE"] != nil { print(name, i, numeric, analytic[i], scale) }
        }
        XCTAssertLessThan(worst, 2e-2, "\(name): finite differences disagree (worst relative error \(worst))", file: file, line: line)
    }

    /// A width-8 block on two sequences of three tokens: dx and every parameter's gradient.
    func checkBlock(_ block: TransformerBlock, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = randomBuffer(2 * 3 * 8)
        let w = probeWeights(48)
        let probe = { try self.dot(block.forward(x.pointer, batch: 2, tokens: 3), w) }
        _ = try probe()
        let dx = try block.backward(w).array(48)
        try check("Block dx", values: x.pointer, count: 48, analytic: dx, probe: probe, samples: 20, file: file, line: line)
        for p in block.parameters {
            try check("Block d\(p.name)", values: p.value.pointer, count: p.count, analytic: p.grad.array, probe: probe, samples: 6, file: file, line: line)
        }
    }

    func probeWeights(_ count: Int) -> [Float] { (0..<count).map { _ in generator.normal() } }

    func dot(_ output: UnsafePointer<Float>, _ weights: [Float]) -> Double {
        var sum = 0.0
        for i in 0..<weights.count { sum += Double(output[i]) * Double(weights[i]) }
        return sum
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    func array(_ count: Int) -> [Float] { Array(UnsafeBufferPointer(start: self, count: count)) }
}
