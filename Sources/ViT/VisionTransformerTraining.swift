import Foundation
import NN

/// Training a published ViT further (SD-MAE adaptation): the encoder sees the visible patch
/// tokens of each image behind its prefix tokens (class and registers are never masked, as in
/// MAE), and backward carries the gradient of those patch tokens down to the patch embedding,
/// the prefix tokens and the positions. Build the network with `trains: true`.
extension VisionTransformer {
    /// Whether `pos_embed` takes gradients: only when the training grid is the stored one (a
    /// resampled table is a fixed function of it that this backward does not invert).
    func trainsPositions(grid: Int) -> Bool { grid == config.storedGrid }

    /// `patches` [B·n, 3·p·p] in the transform's normalised units, the patches listed in
    /// `tokens` (n per image, indices into the `grid`×`grid` input) → the normalised patch
    /// tokens [B·n, D]; the prefix tokens' outputs are read by nothing downstream.
    public func encodeVisible(_ patches: UnsafePointer<Float>, batch: Int, tokens: [[Int]], grid: Int) throws -> UnsafePointer<Float> {
        let n = tokens[0].count, d = config.width, prefix = config.prefixTokens, t = prefix + n
        visibleTokens = tokens
        let embedded = try patchEmbed.forward(patches, rows: batch * n)                    // [B·n, D]
        let x0 = assembleVisible(embedded, batch: batch, tokens: tokens, grid: grid)    // [B·t, D]
        var x = UnsafePointer(x0)
        for block in blocks { x = try UnsafePointer(block.forward(x, batch: batch, tokens: t)) }  // [B·t, D]
        let normed = norm.forward(x, rows: batch * t)                                   // [B·t, D]
        latent.reserve(batch * n * d)
        for b in 0..<batch { (latent.pointer + b * n * d).update(from: normed + (b * t + prefix) * d, count: n * d) }
        return UnsafePointer(latent.pointer)                                            // [B·n, D]
    }

    /// [cls, registers, listed patches] per image, positions added where the config puts them.
    private func assembleVisible(_ embedded: UnsafePointer<Float>, batch: Int, tokens: [[Int]], grid: Int) -> UnsafeMutablePointer<Float> {
        let n = tokens[0].count, d = config.width, prefix = config.prefixTokens, t = prefix + n
        sequence.reserve(batch * t * d)
        let x = sequence.pointer
        let skip = config.noEmbedClass ? 0 : prefix
        // The live table when it trains: a cached copy would go stale after each step.
        let resampled = trainsPositions(grid: grid) ? [] : patchPositions(grid: grid)
        let table = UnsafePointer(positionEmbedding.value.pointer)
        for b in 0..<batch {
            let image = x + b * t * d
            image.update(from: classToken.value.pointer, count: d)
            if let registerTokens { (image + d).update(from: registerTokens.value.pointer, count: (prefix - 1) * d) }
            if skip > 0 { for i in 0..<(prefix * d) { image[i] += table[i] } }
            for (i, token) in tokens[b].enumerated() {
                let row = image + (prefix + i) * d, source = embedded + (b * n + i) * d
                if resampled.isEmpty {
                    let position = table + (skip + token) * d
                    for j in 0..<d { row[j] = source[j] + position[j] }
                } else {
                    for j in 0..<d { row[j] = source[j] + resampled[token * d + j] }
                }
            }
        }
        return x
    }

    /// `dLatent` [B·n, D], the gradient of `encodeVisible`'s output: accumulates into every
    /// parameter above the frozen blocks.
    public func backwardVisible(_ dLatent: UnsafePointer<Float>, grid: Int) throws {
        let batch = visibleTokens.count, n = visibleTokens.first?.count ?? 0
        let d = config.width, prefix = config.prefixTokens, t = prefix + n
        tokenGradient.reserve(batch * t * d)
        let dNormed = tokenGradient.pointer                                              // [B·t, D]
        for b in 0..<batch {
            (dNormed + b * t * d).update(repeating: 0, count: prefix * d)
            (dNormed + (b * t + prefix) * d).update(from: dLatent + b * n * d, count: n * d)
        }
        var dx = norm.backward(dNormed)                                                   // [B·t, D]
        for block in blocks[frozenBlocks...].reversed() { dx = try block.backward(dx) }   // [B·t, D]
        guard frozenBlocks == 0 else { return }
        try backwardEmbedding(dx, batch: batch, grid: grid)
    }

    /// The sequence's gradient [B·t, D] into the prefix tokens, the positions and the patch embedding.
    private func backwardEmbedding(_ dx: UnsafePointer<Float>, batch: Int, grid: Int) throws {
        let n = visibleTokens[0].count, d = config.width, prefix = config.prefixTokens, t = prefix + n
        let skip = config.noEmbedClass ? 0 : prefix
        let positions = trainsPositions(grid: grid) ? positionEmbedding.grad.pointer : nil
        embeddedGradient.reserve(batch * n * d)
        for b in 0..<batch {
            let image = dx + b * t * d
            for j in 0..<d { classToken.grad[j] += image[j] }
            if let registerTokens { for i in 0..<((prefix - 1) * d) { registerTokens.grad[i] += image[d + i] } }
            if let positions, skip > 0 { for i in 0..<(prefix * d) { positions[i] += image[i] } }
            for (i, token) in visibleTokens[b].enumerated() {
                let row = image + (prefix + i) * d
                (embeddedGradient.pointer + (b * n + i) * d).update(from: row, count: d)
                if let positions { for j in 0..<d { positions[(skip + token) * d + j] += row[j] } }
            }
        }
        try patchEmbed.backward(embeddedGradient.pointer)
    }

    /// Learning-rate scales for adaptation, as BEiT's and MAE's fine-tuning: layer `i` of
    /// `depth + 2` (embedding and tokens 0, block k k+1, final norm depth+1) learns at
    /// `scale · decay^(depth + 1 − i)`; the first `frozen` blocks and the embedding learn nothing.
    public func setLearningRates(scale: Double, layerDecay: Double, frozen: Int) {
        frozenBlocks = frozen
        let depth = config.depth
        func set(_ parameters: [Parameter], layer: Int, frozen: Bool) {
            let value = frozen ? 0 : Float(scale * pow(layerDecay, Double(depth + 1 - layer)))
            for parameter in parameters { parameter.learningRateScale = value }
        }
        set([classToken] + (registerTokens.map { [$0] } ?? []) + [positionEmbedding] + patchEmbed.parameters, layer: 0, frozen: frozen > 0)
        for (k, block) in blocks.enumerated() { set(block.parameters, layer: k + 1, frozen: k < frozen) }
        set(norm.parameters, layer: depth + 1, frozen: false)
    }

    /// The weights under the names and layout a file of this config uses (timm's, or HF ViT's
    /// with q, k and v apart), for safetensors.
    public func namedTensors() -> [(name: String, shape: [Int], values: [Float])] {
        let byName = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0) })
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        for (name, parts) in WeightLayout(config: config, hiddenWidth: hiddenWidth).parts {
            guard let parameter = byName[name] else { continue }
            var offset = 0
            for part in parts {
                let count = part.shape.reduce(1, *)
                tensors.append((part.name, part.shape, Array(UnsafeBufferPointer(start: parameter.value.pointer + offset, count: count))))
                offset += count
            }
        }
        return tensors
    }
}
