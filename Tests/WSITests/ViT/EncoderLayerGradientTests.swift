import Foundation
@testable import NN
import XCTest

/// Finite differences for the layers the published encoders add (LayerScale, packed SwiGLU, and a
/// block with both), in the manner of GradientCheckTests.
final class EncoderLayerGradientTests: GradientCheckCase {
    func testLayerScale() throws {
        let layer = LayerScale("ls", width: 6, initialValue: 0.7)
        for i in 0..<6 { layer.gamma.value[i] += generator.normal() * 0.3 }
        let x = randomBuffer(4 * 6)
        let w = probeWeights(24)
        let probe = { self.dot(layer.forward(x.pointer, rows: 4), w) }
        _ = probe()
        let dx = layer.backward(w).array(24)
        try check("LayerScale dx", values: x.pointer, count: 24, analytic: dx, probe: probe)
        try check("LayerScale dγ", values: layer.gamma.value.pointer, count: 6, analytic: layer.gamma.grad.array, probe: probe)
    }

    func testPackedSwiGLU() throws {
        let layer = SwiGLU()
        let x = randomBuffer(3 * 10, scale: 2)
        let w = probeWeights(3 * 5)
        let probe = { self.dot(layer.forward(x.pointer, rows: 3, width: 10), w) }
        _ = probe()
        try check("SwiGLU dx", values: x.pointer, count: 30, analytic: layer.backward(w).array(30), probe: probe, samples: 30, step: 1e-3)
        // SiLU(1)·2 = 2/(1+e⁻¹): the gate is the first half, the value the second.
        let one = Buffer([1, 2])
        XCTAssertEqual(layer.forward(one.pointer, rows: 1, width: 2)[0], 2 / (1 + exp(-1)), accuracy: 1e-6)
    }

    func testBlockWithLayerScaleAndSwiGLU() throws {
        let block = TransformerBlock("b", width: 8, heads: 2, hidden: 12, mlp: .swigluPacked, layerScale: true, normEpsilon: 1e-5)
        for p in block.parameters where p.decay || p.name.hasSuffix("gamma") {
            for i in 0..<p.count { p.value[i] = generator.normal() * 0.3 + (p.name.hasSuffix("gamma") ? 0.5 : 0) }
        }
        XCTAssertEqual(block.fc2.inputs, 6)
        try checkBlock(block)
    }
}
