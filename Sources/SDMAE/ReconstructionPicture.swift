import Foundation
import Imaging
import NN

/// The picture that shows what the model learned: per patch, a row of
/// original | masked input | reconstruction (visible patches pasted back, as MAE's figures).
public enum ReconstructionPicture {
    /// `prediction` replaces the model's output in checks (a perfect prediction is its target).
    public static func render(model: SDMAEModel, images: [Float], batch: Int, seed: UInt64,
                              prediction predicted: (() -> [Float])? = nil) throws -> RGBImage {
        let config = model.config
        var generator = SeededGenerator(seed: seed)
        let mask = TokenMask.random(batch: batch, tokens: config.tokens, masked: config.maskedTokens, using: &generator)
        try images.withUnsafeBufferPointer { _ = try model.forward(images: $0.baseAddress!, batch: batch, mask: mask) }
        let prediction = predicted?() ?? model.prediction
        let s = config.imageSize, p = config.patchSize, g = config.grid, gap = 4
        var canvas = RGBImage(width: 3 * s + 2 * gap, height: batch * s + (batch - 1) * gap, fill: (255, 255, 255))
        for b in 0..<batch {
            let image = Array(images[(b * 3 * s * s)..<((b + 1) * 3 * s * s)])
            let top = b * (s + gap)
            var reconstruction = image
            var masked = image
            let n = p * p
            var pixels = [Float](repeating: 0, count: config.patchValues)
            for (i, token) in mask.masked[b].enumerated() {
                let py = (token / g) * p, px = (token % g) * p
                let start = (b * mask.masked[b].count + i) * config.patchValues
                var predicted = Array(prediction[start..<(start + config.patchValues)])
                // Undo the target normalisation with the original patch's own statistics.
                image.withUnsafeBufferPointer { Patches.pixels(of: token, in: $0.baseAddress!, config: config, into: &pixels) }
                let statistics = config.targetNormalisation.normalise(&pixels, pixels: n)
                config.targetNormalisation.denormalise(&predicted, pixels: n, statistics)
                for y in 0..<p {
                    for x in 0..<p {
                        for c in 0..<3 {
                            let o = c * s * s + (py + y) * s + px + x
                            reconstruction[o] = predicted[(y * p + x) * 3 + c]
                            masked[o] = 0.5
                        }
                    }
                }
            }
            for (column, planes) in [image, masked, reconstruction].enumerated() {
                for y in 0..<s {
                    for x in 0..<s {
                        func byte(_ c: Int) -> UInt8 { UInt8(max(0, min(255, (planes[c * s * s + y * s + x] * 255).rounded()))) }
                        canvas[column * (s + gap) + x, top + y] = (byte(0), byte(1), byte(2))
                    }
                }
            }
        }
        return canvas
    }
}
