import NN

/// Cutting [B,3,H,W] images (channel-planar floats in [0,1]) into token rows.
enum Patches {
    /// Rows ordered (channel, row-in-patch, col-in-patch): the conv-style patch-embedding weight
    /// [D,3,P,P] then applies as a plain [D, 3·P·P] matrix. `tokens[b]` lists which patches to cut.
    static func channelFirst(_ images: UnsafePointer<Float>, config: SDMAEConfig, batch: Int, tokens: [[Int]],
                             into out: UnsafeMutablePointer<Float>) {
        let p = config.patchSize, g = config.grid, s = config.imageSize
        var row = 0
        for b in 0..<batch {
            let image = images + b * 3 * s * s
            for token in tokens[b] {
                let top = (token / g) * p, left = (token % g) * p
                var o = out + row * config.patchValues
                for c in 0..<3 {
                    for y in 0..<p {
                        (o).update(from: image + c * s * s + (top + y) * s + left, count: p)
                        o += p
                    }
                }
                row += 1
            }
        }
    }

    /// Reconstruction targets [rows, P·P·3], ordered (row-in-patch, col-in-patch, channel) as the
    /// spec's patchify, normalised per the config. Every image lists the same number of tokens.
    static func targets(_ images: UnsafePointer<Float>, config: SDMAEConfig, batch: Int, tokens: [[Int]],
                        into out: UnsafeMutablePointer<Float>) {
        let perImage = tokens.first?.count ?? 0
        Parallel.forChunks(batch) { range in
            for b in range {
                for (i, token) in tokens[b].enumerated() {
                    target(of: token, in: images + b * 3 * config.imageSize * config.imageSize, config: config,
                           into: out + (b * perImage + i) * config.patchValues)
                }
            }
        }
    }

    private static func target(of token: Int, in image: UnsafePointer<Float>, config: SDMAEConfig, into o: UnsafeMutablePointer<Float>) {
        pixels(of: token, in: image, config: config, into: o)
        _ = config.targetNormalisation.normalise(o, pixels: config.patchSize * config.patchSize)
    }

    /// The raw pixels of one token, ordered (row-in-patch, col-in-patch, channel).
    static func pixels(of token: Int, in image: UnsafePointer<Float>, config: SDMAEConfig, into o: UnsafeMutablePointer<Float>) {
        let p = config.patchSize, g = config.grid, s = config.imageSize
        let top = (token / g) * p, left = (token % g) * p
        for y in 0..<p {
            for x in 0..<p {
                for c in 0..<3 { o[(y * p + x) * 3 + c] = image[c * s * s + (top + y) * s + left + x] }
            }
        }
    }
}

/// What a target normalisation did to one patch: x' = (x − mean[c]) / scale[c] per channel c.
struct PatchStatistics {
    var mean: [Double]
    var scale: [Double]
}

extension TargetNormalisation {
    /// Normalises a patch of `pixels` RGB pixels ([pixels, 3], channel last) in place and returns
    /// the statistics `denormalise` needs to undo it.
    func normalise(_ o: UnsafeMutablePointer<Float>, pixels n: Int) -> PatchStatistics {
        switch self {
        case .none:
            return PatchStatistics(mean: [0, 0, 0], scale: [1, 1, 1])
        case .perPatchChannel:
            var statistics = PatchStatistics(mean: [0, 0, 0], scale: [1, 1, 1])
            for c in 0..<3 {
                var mean = 0.0
                for i in 0..<n { mean += Double(o[i * 3 + c]) }
                mean /= Double(n)
                var variance = 0.0
                for i in 0..<n { let d = Double(o[i * 3 + c]) - mean; variance += d * d }
                let std = (variance / Double(n - 1)).squareRoot()
                for i in 0..<n { o[i * 3 + c] = Float((Double(o[i * 3 + c]) - mean) / (std + 1e-6)) }
                statistics.mean[c] = mean
                statistics.scale[c] = std + 1e-6
            }
            return statistics
        case .perPatch:
            let m = 3 * n
            var mean = 0.0
            for i in 0..<m { mean += Double(o[i]) }
            mean /= Double(m)
            var variance = 0.0
            for i in 0..<m { let d = Double(o[i]) - mean; variance += d * d }
            // torch.var is unbiased, as in MAE's code.
            let scale = (variance / Double(m - 1) + 1e-6).squareRoot()
            let inverse = 1 / scale
            for i in 0..<m { o[i] = Float((Double(o[i]) - mean) * inverse) }
            return PatchStatistics(mean: [mean, mean, mean], scale: [scale, scale, scale])
        }
    }

    /// The inverse of `normalise` with the same statistics: a prediction back to pixels.
    func denormalise(_ o: UnsafeMutablePointer<Float>, pixels n: Int, _ statistics: PatchStatistics) {
        for i in 0..<n {
            for c in 0..<3 { o[i * 3 + c] = Float(Double(o[i * 3 + c]) * statistics.scale[c] + statistics.mean[c]) }
        }
    }
}
