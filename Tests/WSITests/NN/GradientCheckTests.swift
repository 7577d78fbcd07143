import Foundation
import CKernels
@testable import NN
@testable import SDMAE
import XCTest

/// Every NN layer's analytic backward against finite differences.
final class GradientCheckTests: GradientCheckCase {
    func testLinear() throws {
        let layer = Linear("l", inputs: 5, outputs: 4)
        for p in layer.parameters { for i in 0..<p.count { p.value[i] = generator.normal() * 0.5 } }
        let x = randomBuffer(3 * 5)
        let w = probeWeights(3 * 4)
        let probe = { try self.dot(layer.forward(x.pointer, rows: 3), w) }
        _ = try probe()
        let dx = try layer.backward(w).array(3 * 5)
        try check("Linear dx", values: x.pointer, count: 15, analytic: dx, probe: probe)
        try check("Linear dW", values: layer.weight.value.pointer, count: 20, analytic: layer.weight.grad.array, probe: probe)
        try check("Linear db", values: layer.bias!.value.pointer, count: 4, analytic: layer.bias!.grad.array, probe: probe)
    }

    func testLayerNorm() throws {
        let layer = LayerNorm("n", width: 6)
        for p in layer.parameters { for i in 0..<p.count { p.value[i] += generator.normal() * 0.3 } }
        let x = randomBuffer(4 * 6)
        let w = probeWeights(24)
        let probe = { self.dot(layer.forward(x.pointer, rows: 4), w) }
        _ = probe()
        let dx = layer.backward(w).array(24)
        try check("LayerNorm dx", values: x.pointer, count: 24, analytic: dx, probe: probe)
        try check("LayerNorm dγ", values: layer.weight.value.pointer, count: 6, analytic: layer.weight.grad.array, probe: probe)
        try check("LayerNorm dβ", values: layer.bias.value.pointer, count: 6, analytic: layer.bias.grad.array, probe: probe)
    }

    /// Rows are normalised eight at a time in SIMD lanes; each must equal the plain row-by-row
    /// formula bit for bit (13 rows: a full group and a short tail).
    func testLayerNormRowsInLanesEqualOneRowAtATime() {
        let rows = 13, width = 24
        let norm = LayerNorm("n", width: width)
        for i in 0..<width { norm.weight.value[i] = generator.uniform() + 0.5; norm.bias.value[i] = generator.uniform() - 0.5 }
        let x = (0..<(rows * width)).map { _ in generator.uniform() * 4 - 2 }
        let y = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: norm.forward($0.baseAddress!, rows: rows), count: rows * width)) }
        for r in 0..<rows {
            let row = Array(x[(r * width)..<((r + 1) * width)])
            var sum: Float = 0
            for v in row { sum += v }
            let m = sum / Float(width)
            var variance: Float = 0
            for v in row { variance += (v - m) * (v - m) }
            let s = 1 / (variance / Float(width) + norm.epsilon).squareRoot()
            for i in 0..<width {
                XCTAssertEqual(y[r * width + i].bitPattern, ((row[i] - m) * s * norm.weight.value[i] + norm.bias.value[i]).bitPattern, "row \(r)")
            }
        }
    }

    func testGELU() throws {
        let layer = GELU()
        let x = randomBuffer(20, scale: 2)
        let w = probeWeights(20)
        let probe = { self.dot(layer.forward(x.pointer, count: 20), w) }
        _ = probe()
        try check("GELU dx", values: x.pointer, count: 20, analytic: layer.backward(w).array(20), probe: probe, samples: 20, step: 1e-3)
        let one = Buffer([1.0])
        XCTAssertEqual(layer.forward(one.pointer, count: 1)[0], 0.8413447, accuracy: 1e-6, "exact erf GELU, not tanh")
    }

    func testAttention() throws {
        let layer = Attention(width: 8, heads: 2)
        let qkv = randomBuffer(2 * 5 * 24)
        let w = probeWeights(2 * 5 * 8)
        let probe = { try self.dot(layer.forward(qkv.pointer, batch: 2, tokens: 5), w) }
        _ = try probe()
        let dqkv = try layer.backward(w).array(2 * 5 * 24)
        try check("Attention dqkv", values: qkv.pointer, count: 240, analytic: dqkv, probe: probe, samples: 40)
    }

    func testTransformerBlock() throws {
        let block = TransformerBlock("b", width: 8, heads: 2)
        for p in block.parameters where p.decay { for i in 0..<p.count { p.value[i] = generator.normal() * 0.3 } }
        try checkBlock(block)
    }

    func testL2NormalizeAndWeightNorm() throws {
        let normalize = L2Normalize(width: 5)
        let x = randomBuffer(15)
        let w = probeWeights(15)
        let probe = { self.dot(normalize.forward(x.pointer, rows: 3), w) }
        _ = probe()
        try check("L2Normalize dx", values: x.pointer, count: 15, analytic: normalize.backward(w).array(15), probe: probe, step: 1e-3)

        let last = WeightNormLinear("last", inputs: 5, outputs: 7)
        for i in 0..<last.direction.count { last.direction.value[i] = generator.normal() }
        let w2 = probeWeights(21)
        let probe2 = { try self.dot(last.forward(x.pointer, rows: 3), w2) }
        _ = try probe2()
        let dx = try last.backward(w2).array(15)
        try check("WeightNorm dx", values: x.pointer, count: 15, analytic: dx, probe: probe2, step: 1e-3)
        try check("WeightNorm dV", values: last.direction.value.pointer, count: 35, analytic: last.direction.grad.array, probe: probe2, step: 1e-3)
    }

    /// The whole SD-MAE loss (teacher not detached, so the loss's true gradient): a few entries of
    /// every parameter. The stop-gradient variant is not a gradient of any loss; the PyTorch
    /// fixture checks it.
    func testWholeModelLoss() throws {
        do {
            var config = SDMAEConfig(imageSize: 16, patchSize: 4, width: 8, depth: 1, heads: 2, decoderWidth: 8, decoderDepth: 1,
                                     decoderHeads: 2, headHidden: 12, bottleneck: 8, prototypes: 10)
            config.maskRatio = 0.5
            config.teacherTemperature = 0.5
            config.studentTemperature = 0.5
            let model = SDMAEModel(config: config, seed: 3)
            // Weights of order one keep the head's bottleneck norm away from 0, where L2
            // normalisation is too curved for any finite-difference step.
            for p in model.parameters where p.name.contains("_head.") { for i in 0..<p.count { p.value[i] = generator.normal() * 0.4 } }
            let images = (0..<(2 * 3 * 16 * 16)).map { _ in generator.uniform() }
            let mask = TokenMask.random(batch: 2, tokens: 16, masked: 8, using: &generator)
            let probe = { try images.withUnsafeBufferPointer { try model.forward(images: $0.baseAddress!, batch: 2, mask: mask).total } }
            _ = try probe()
            for p in model.parameters { p.grad.zero() }
            try model.backward()
            for p in model.parameters {
                try check("SD-MAE d\(p.name)", values: p.value.pointer, count: p.count,
                      analytic: p.grad.array, probe: probe, samples: 3, step: 3e-3)
            }
        }
    }

    /// Sinkhorn targets are fixed (no gradient through P): the loss's gradient then holds exactly
    /// for the parameters P does not depend on, the student head and the pixel predictor; and
    /// the balanced targets give every prototype an equal share of the batch.
    func testSinkhornTargets() throws {
        var config = SDMAEConfig(imageSize: 16, patchSize: 4, width: 8, depth: 1, heads: 2, decoderWidth: 8, decoderDepth: 1,
                                 decoderHeads: 2, headHidden: 12, bottleneck: 8, prototypes: 6)
        config.maskRatio = 0.5
        config.teacherTemperature = 0.5
        config.studentTemperature = 0.5
        config.teacherTargets = .sinkhorn
        let model = SDMAEModel(config: config, seed: 4)
        for p in model.parameters where p.name.contains("_head.") { for i in 0..<p.count { p.value[i] = generator.normal() * 0.4 } }
        let batch = 3
        let images = (0..<(batch * 3 * 16 * 16)).map { _ in generator.uniform() }
        let mask = TokenMask.random(batch: batch, tokens: 16, masked: 8, using: &generator)
        let probe = { try images.withUnsafeBufferPointer { try model.forward(images: $0.baseAddress!, batch: batch, mask: mask).total } }
        _ = try probe()
        let targets = model.teacherDistribution
        for b in 0..<batch { XCTAssertEqual(targets[(b * 6)..<(b * 6 + 6)].reduce(0, +), 1, accuracy: 1e-5, "row \(b) is a distribution") }
        for j in 0..<6 {
            let share = (0..<batch).map { targets[$0 * 6 + j] }.reduce(0, +) / Float(batch)
            XCTAssertEqual(share, 1 / 6, accuracy: 0.02, "prototype \(j) holds about 1/K of the batch")
        }
        for p in model.parameters { p.grad.zero() }
        try model.backward()
        for p in model.parameters where p.name.hasPrefix("student_head.") || p.name.hasPrefix("decoder_pred.") {
            try check("Sinkhorn d\(p.name)", values: p.value.pointer, count: p.count, analytic: p.grad.array, probe: probe, samples: 3, step: 3e-3)
        }
        XCTAssertTrue(model.parameters.filter { $0.name.hasPrefix("teacher_head.") }.allSatisfy { $0.grad.array.allSatisfy { $0 == 0 } },
                      "no gradient reaches the teacher head through fixed targets")
    }

    /// Swapped prediction with the codes held fixed: the logit gradients against central
    /// differences of the loss; and in a whole model both heads learn (the teacher's gradient is
    /// not zero, unlike fixed Sinkhorn targets).
    func testSwappedPredictionGradients() throws {
        let batch = 3, k = 5, tauS: Float = 0.5
        let codes = { (0..<(batch * k)).map { _ in self.generator.uniform() + 0.1 } }
        var (qt, qs) = (codes(), codes())
        for b in 0..<batch {
            for q in [0, 1] {
                let sum = (0..<k).map { (q == 0 ? qt : qs)[b * k + $0] }.reduce(0, +)
                for j in 0..<k { if q == 0 { qt[b * k + j] /= sum } else { qs[b * k + j] /= sum } }
            }
        }
        var zs = (0..<(batch * k)).map { _ in generator.normal() }, zt = (0..<(batch * k)).map { _ in generator.normal() }
        func loss() -> Double {
            var lq = zs.map { $0 / tauS }, lt = [Float](repeating: 0, count: batch * k)
            for b in 0..<batch { lq.withUnsafeMutableBufferPointer { logSoftmaxInPlace($0.baseAddress! + b * k, count: k) } }
            return SDMAEModel.swappedPredictionLoss(studentLogProbabilities: lq, teacherLogits: zt, teacherCodes: qt, studentCodes: qs,
                                                    teacherLogProbabilities: &lt, batch: batch, k: k, tauS: tauS)
        }
        var lq = zs.map { $0 / tauS }, lt = [Float](repeating: 0, count: batch * k)
        for b in 0..<batch { lq.withUnsafeMutableBufferPointer { logSoftmaxInPlace($0.baseAddress! + b * k, count: k) } }
        _ = SDMAEModel.swappedPredictionLoss(studentLogProbabilities: lq, teacherLogits: zt, teacherCodes: qt, studentCodes: qs,
                                             teacherLogProbabilities: &lt, batch: batch, k: k, tauS: tauS)
        var dzs = [Float](repeating: 0, count: batch * k), dzt = dzs
        SDMAEModel.swappedPredictionGradients(studentLogProbabilities: lq, teacherLogProbabilities: lt, teacherCodes: qt, studentCodes: qs,
                                              weight: 1, batch: batch, k: k, tauS: tauS, student: &dzs, teacher: &dzt)
        let h: Float = 1e-2
        for i in 0..<(batch * k) {
            for (name, analytic) in [("z_s", dzs[i]), ("z_t", dzt[i])] {
                let saved = name == "z_s" ? zs[i] : zt[i]
                if name == "z_s" { zs[i] = saved + h } else { zt[i] = saved + h }
                let up = loss()
                if name == "z_s" { zs[i] = saved - h } else { zt[i] = saved - h }
                let down = loss()
                if name == "z_s" { zs[i] = saved } else { zt[i] = saved }
                XCTAssertEqual(Double(analytic), (up - down) / Double(2 * h), accuracy: 2e-4, "d\(name)[\(i)]")
            }
        }

        var config = SDMAEConfig(imageSize: 16, patchSize: 4, width: 8, depth: 1, heads: 2, decoderWidth: 8, decoderDepth: 1,
                                 decoderHeads: 2, headHidden: 12, bottleneck: 8, prototypes: 6)
        config.maskRatio = 0.5
        config.teacherTargets = .swapped
        let model = SDMAEModel(config: config, seed: 4)
        let images = (0..<(batch * 3 * 16 * 16)).map { _ in generator.uniform() }
        let mask = TokenMask.random(batch: batch, tokens: 16, masked: 8, using: &generator)
        let losses = try images.withUnsafeBufferPointer { try model.forward(images: $0.baseAddress!, batch: batch, mask: mask) }
        XCTAssertTrue(losses.distillation.isFinite && losses.distillation > 0)
        for p in model.parameters { p.grad.zero() }
        try model.backward()
        for head in ["student_head.", "teacher_head."] {
            XCTAssertTrue(model.parameters.filter { $0.name.hasPrefix(head) }.contains { $0.grad.array.contains { $0 != 0 } }, "\(head) learns")
        }
    }

    /// MSN's mean-entropy term: its logit gradient against central differences of −H(q̄); in a
    /// whole model it lowers the loss, and both heads' gradients (the centred teacher's P is
    /// trained and spread too) match central differences of the total loss.
    func testMeanEntropyGradients() throws {
        let batch = 4, k = 5, tau: Float = 0.5
        let z = UnsafeMutablePointer<Float>.allocate(capacity: batch * k)
        defer { z.deallocate() }
        for i in 0..<(batch * k) { z[i] = generator.normal() }
        func logProbabilities() -> [Float] {
            var lq = (0..<(batch * k)).map { z[$0] / tau }
            for b in 0..<batch { lq.withUnsafeMutableBufferPointer { logSoftmaxInPlace($0.baseAddress! + b * k, count: k) } }
            return lq
        }
        var gradient = [Float](repeating: 0, count: batch * k)
        SDMAEModel.addMeanEntropyGradients(logProbabilities: logProbabilities(), weight: 1, batch: batch, k: k, tau: tau, into: &gradient)
        XCTAssertTrue(gradient.contains { abs($0) > 1e-3 })
        try check("d(−H(q̄))/dz", values: z, count: batch * k, analytic: gradient,
              probe: { -SDMAEModel.meanEntropy(logProbabilities: logProbabilities(), batch: batch, k: k) }, samples: batch * k)

        var config = SDMAEConfig(imageSize: 16, patchSize: 4, width: 8, depth: 1, heads: 2, decoderWidth: 8, decoderDepth: 1,
                                 decoderHeads: 2, headHidden: 12, bottleneck: 8, prototypes: 6)
        config.maskRatio = 0.5
        // Softer than τs 0.1, so that central differences of the sharp softmax stay accurate in fp32.
        config.studentTemperature = 0.5
        let images = (0..<(batch * 3 * 16 * 16)).map { _ in generator.uniform() }
        let mask = TokenMask.random(batch: batch, tokens: 16, masked: 8, using: &generator)
        func distillation(weight: Double) throws -> Double {
            config.meanEntropyWeight = weight
            let model = SDMAEModel(config: config, seed: 4)
            return try images.withUnsafeBufferPointer { try model.forward(images: $0.baseAddress!, batch: batch, mask: mask).distillation }
        }
        let plain = try distillation(weight: 0), regularised = try distillation(weight: 2)
        XCTAssertLessThan(regularised, plain - 0.1, "2·(H(q̄) + H(P̄)) is subtracted")
        XCTAssertGreaterThan(regularised, plain - 2 * 2 * log(6.0) - 1e-6, "each mean entropy is at most ln K")

        config.meanEntropyWeight = 2
        let model = SDMAEModel(config: config, seed: 4)
        // The initial heads are nearly flat; larger weights keep central differences well above rounding.
        for p in model.parameters where p.name.contains("_head.") { for i in 0..<p.count { p.value[i] = generator.normal() * 0.4 } }
        let probe = { try images.withUnsafeBufferPointer { try model.forward(images: $0.baseAddress!, batch: batch, mask: mask).total } }
        _ = try probe()
        for p in model.parameters { p.grad.zero() }
        try model.backward()
        for p in model.parameters where p.name.hasPrefix("student_head.") || p.name.hasPrefix("teacher_head.") {
            try check("mean-entropy d\(p.name)", values: p.value.pointer, count: p.count, analytic: p.grad.array, probe: probe, samples: 3, step: 3e-3)
        }
    }

    func testAdamWMatchesClosedFormFirstStep() {
        let p = Parameter("w", shape: [2, 2])
        let bias = Parameter("b", shape: [2])
        for i in 0..<4 { p.value[i] = 1; p.grad[i] = Float(i + 1) }
        for i in 0..<2 { bias.value[i] = 1; bias.grad[i] = -1 }
        let optimiser = AdamW(parameters: [p, bias], learningRate: 0.1, weightDecay: 0.5)
        optimiser.update()
        // First step: m̂ = g, v̂ = g², so the update is lr·sign(g) (up to eps), after decay 1 − lr·wd.
        for i in 0..<4 { XCTAssertEqual(p.value[i], 0.95 - 0.1, accuracy: 1e-6) }
        for i in 0..<2 { XCTAssertEqual(bias.value[i], 1.1, accuracy: 1e-6, "no decay on biases") }
    }

    func testWarmupCosineSchedule() {
        let schedule = WarmupCosineSchedule(peak: 1e-3, minimum: 1e-5, warmupSteps: 10, totalSteps: 110)
        XCTAssertEqual(schedule.learningRate(at: 0), 1e-4, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(at: 9), 1e-3, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(at: 60), (1e-3 + 1e-5) / 2, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(at: 110), 1e-5, accuracy: 1e-12)
    }
}
