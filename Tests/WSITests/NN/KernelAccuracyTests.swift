import Foundation
import CKernels
@testable import NN
@testable import SDMAE
import XCTest

/// The vectorised elementwise kernels against double-precision references, with lengths that
/// are not multiples of any vector width, on every instruction set this CPU has.
final class KernelAccuracyTests: XCTestCase {
    func testEveryInstructionSet() {
        let original = ck_level()
        defer { _ = ck_use(original) }
        for level: Int32 in [0, 1, 2] where ck_supports(level) != 0 {
            XCTAssertEqual(ck_use(level), 1)
            testGELUMatchesExactErf()
            testSoftmaxMatchesDoublePrecision()
            testGateAndReLUMatchDoublePrecision()
            var generator = SeededGenerator(seed: 1)
            let x = Buffer((0..<1003).map { _ in generator.normal() * 3 }), dy = Buffer((0..<1003).map { _ in generator.normal() })
            let layer = GELU()
            layer.forward(x.pointer, count: 1003)
            let dx = layer.backward(dy.pointer)
            withExtendedLifetime(layer) {
                for i in 0..<1003 {
                    let v = Double(x[i])
                    let derivative = 0.5 * (1 + erf(v / 2.0.squareRoot())) + v * exp(-v * v / 2) / (2 * Double.pi).squareRoot()
                    XCTAssertEqual(Double(dx[i]), Double(dy[i]) * derivative, accuracy: 2e-6 * max(1, abs(Double(dy[i]) * derivative)),
                                   "level \(level) GELU' at \(v)")
                }
            }
        }
        XCTAssertEqual(ck_use(7), 0, "an unknown instruction set is refused")
    }

    /// tanh and sigmoid of the attention gate, and ReLU, against libm in double precision,
    /// across the polynomial/exponential switch of tanh at |x| = 0.625 and into saturation.
    func testGateAndReLUMatchDoublePrecision() {
        let n = 4001
        let u = Buffer((0..<n).map { -12 + 24 * Float($0) / Float(n - 1) }), v = Buffer((0..<n).map { 12 - 24 * Float($0) / Float(n - 1) })
        let gate = TanhSigmoidGate()
        let a = gate.forward(u.pointer, v.pointer, count: n)
        var generator = SeededGenerator(seed: 4)
        let da = Buffer((0..<n).map { _ in generator.normal() })
        gate.backward(da.pointer)
        let relu = ReLU()
        let y = relu.forward(u.pointer, count: n)
        let dx = relu.backward(da.pointer)
        withExtendedLifetime((gate, relu)) {
            for i in 0..<n {
                let (t, g) = (tanh(Double(u[i])), 1 / (1 + exp(-Double(v[i]))))
                XCTAssertEqual(Double(a[i]), t * g, accuracy: 3e-7 * max(1e-3, abs(t * g)) + 1e-9, "gate at u=\(u[i]), v=\(v[i])")
                XCTAssertEqual(Double(gate.gradientU[i]), Double(da[i]) * g * (1 - t * t), accuracy: 1e-6 * max(1, abs(Double(da[i]))))
                XCTAssertEqual(Double(gate.gradientV[i]), Double(da[i]) * t * g * (1 - g), accuracy: 1e-6 * max(1, abs(Double(da[i]))))
                XCTAssertEqual(y[i], max(0, u[i]))
                XCTAssertEqual(dx[i], u[i] > 0 ? da[i] : 0)
            }
        }
    }

    func testGELUMatchesExactErf() {
        let n = 4001
        let x = Buffer((0..<n).map { -10 + 20 * Float($0) / Float(n - 1) })
        let layer = GELU()
        let y = layer.forward(x.pointer, count: n)
        var worst = 0.0
        withExtendedLifetime(layer) {
            for i in 0..<n {
                let v = Double(x[i])
                let exact = 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
                worst = max(worst, abs(Double(y[i]) - exact) / max(1, abs(exact)))
            }
        }
        XCTAssertLessThan(worst, 2e-6)
    }

    func testSoftmaxMatchesDoublePrecision() {
        var generator = SeededGenerator(seed: 5)
        for count in [1, 7, 33, 196, 1024] {
            let values = (0..<count).map { _ in generator.normal() * 20 }
            let buffer = Buffer(values)
            softmaxInPlace(buffer.pointer, count: count)
            let maximum = values.max()!
            let exps = values.map { exp(Double($0 - maximum)) }
            let total = exps.reduce(0, +)
            for i in 0..<count {
                XCTAssertEqual(Double(buffer[i]), exps[i] / total, accuracy: 1e-6 * max(1e-3, exps[i] / total) + 1e-9, "n=\(count) i=\(i)")
            }
            XCTAssertEqual(buffer.array.reduce(0, +), 1, accuracy: 1e-5)
        }
    }
}
