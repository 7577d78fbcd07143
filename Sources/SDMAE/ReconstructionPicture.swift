import Foundation
import Imaging
import NN

/// The picture that shows what the model learned: per patch, a row of
/// original | masked input | reconstruction (visible patches pasted back, as MAE's figures).
public enum ReconstructionPicture {
    public static func render(model: SDMAEModel, images: [Float], batch: Int, seed: UInt64) -> RGBImage {
        let config = model.config
        var generator = SeededGenerator(seed: seed)
        let mask = TokenMask.random(batch: batch, tokens: config.tokens, masked: config.maskedTokens, using: &generator)
        images.withUnsafeBufferPointer { _ = model.forward(images: $0.baseAddress!, batch: batch, mask: mask) }
        let prediction = model.prediction
        let s = config.imageSize, p = config.patchSize, g = config.grid, gap = 4
        var canvas = RGBImage(width: 3 * s + 2 * gap, height: batch * s + (batch - 1) * gap, fill: (255, 255, 255))
        for b in 0..<batch {
            let image = Array(images[(b * 3 * s * s)..<((b + 1) * 3 * s * s)])
            let top = b * (s + gap)
            var reconstruction = image
            var masked = image
            for (i, token) in mask.masked[b].enumerated() {
                let py = (token / g) * p, px = (token % g) * p
                let row = prediction[((b * mask.masked[b].count) + i) * config.patchValues..<((b * mask.masked[b].count) + i + 1) * config.patchValues]
                for c in 0..<3 {
                    // Undo the target normalisation with the original patch's own statistics.
                    var values: [Float] = []
                    for y in 0..<p { for x in 0..<p { values.append(image[c * s * s + (py + y) * s + px + x]) } }
                    let mean = values.reduce(0, +) / Float(values.count)
                    let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(max(1, values.count - 1))
                    let std = variance.squareRoot() + 1e-6
                    for y in 0..<p {
                        for x in 0..<p {
                            let o = c * s * s + (py + y) * s + px + x
                            reconstruction[o] = row[row.startIndex + (y * p + x) * 3 + c] * std + mean
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
