/// An 8-bit RGB raster, row-major, three interleaved channels.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "pixel buffer does not match \(width)x\(height) RGB")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        self.width = width
        self.height = height
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in stride(from: 0, to: pixels.count, by: 3) {
            pixels[i] = fill.0; pixels[i + 1] = fill.1; pixels[i + 2] = fill.2
        }
        self.pixels = pixels
    }

    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        get {
            let i = (y * width + x) * 3
            return (pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            let i = (y * width + x) * 3
            pixels[i] = newValue.0; pixels[i + 1] = newValue.1; pixels[i + 2] = newValue.2
        }
    }

    /// Resamples to `newWidth`×`newHeight` by area averaging when shrinking (no aliasing on
    /// thumbnails) and bilinear interpolation when enlarging.
    /// The pixels inside (x, y, width, height), clipped to the image.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> RGBImage {
        let x0 = max(0, min(x, width)), y0 = max(0, min(y, height))
        let x1 = max(x0, min(x + w, width)), y1 = max(y0, min(y + h, height))
        var out: [UInt8] = []
        out.reserveCapacity((x1 - x0) * (y1 - y0) * 3)
        for row in y0..<y1 { out += pixels[((row * width + x0) * 3)..<((row * width + x1) * 3)] }
        return RGBImage(width: x1 - x0, height: y1 - y0, pixels: out)
    }

    public func resized(width newWidth: Int, height newHeight: Int) -> RGBImage {
        if newWidth == width && newHeight == height { return self }
        if newWidth <= width && newHeight <= height { return areaAveraged(newWidth, newHeight) }
        return bilinear(newWidth, newHeight)
    }

    /// Separable box filter with fractional edge weights: each output pixel is the exact mean of
    /// the source area it covers.
    private func areaAveraged(_ newWidth: Int, _ newHeight: Int) -> RGBImage {
        let columnWeights = Self.weights(from: width, to: newWidth)
        let rowWeights = Self.weights(from: height, to: newHeight)
        // Horizontal pass into floats, then vertical pass into bytes.
        var horizontal = [Float](repeating: 0, count: newWidth * height * 3)
        pixels.withUnsafeBufferPointer { src in
            horizontal.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let rowIn = y * width * 3, rowOut = y * newWidth * 3
                    for (ox, spans) in columnWeights.enumerated() {
                        var r: Float = 0, g: Float = 0, b: Float = 0
                        for (x, w) in spans {
                            let i = rowIn + x * 3
                            r += w * Float(src[i]); g += w * Float(src[i + 1]); b += w * Float(src[i + 2])
                        }
                        let o = rowOut + ox * 3
                        dst[o] = r; dst[o + 1] = g; dst[o + 2] = b
                    }
                }
            }
        }
        var out = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
        var row = [Float](repeating: 0, count: newWidth * 3)
        horizontal.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                row.withUnsafeMutableBufferPointer { accumulator in
                    let rowLength = newWidth * 3
                    for (oy, spans) in rowWeights.enumerated() {
                        let rowOut = oy * rowLength
                        for (y, w) in spans {
                            let rowIn = y * rowLength
                            for i in 0..<rowLength { accumulator[i] += w * src[rowIn + i] }
                        }
                        for i in 0..<rowLength {
                            dst[rowOut + i] = UInt8(max(0, min(255, accumulator[i].rounded())))
                            accumulator[i] = 0
                        }
                    }
                }
            }
        }
        return RGBImage(width: newWidth, height: newHeight, pixels: out)
    }

    /// For each output index, the source indices it covers and their normalised weights.
    private static func weights(from source: Int, to target: Int) -> [[(Int, Float)]] {
        let scale = Double(source) / Double(target)
        return (0..<target).map { o in
            let start = Double(o) * scale, end = Double(o + 1) * scale
            var spans: [(Int, Float)] = []
            var i = Int(start)
            while Double(i) < end && i < source {
                let w = min(end, Double(i + 1)) - max(start, Double(i))
                if w > 1e-9 { spans.append((i, Float(w / scale))) }
                i += 1
            }
            return spans
        }
    }

    private func bilinear(_ newWidth: Int, _ newHeight: Int) -> RGBImage {
        var out = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
        let sx = Double(width) / Double(newWidth), sy = Double(height) / Double(newHeight)
        for oy in 0..<newHeight {
            let fy = max(0, min(Double(height - 1), (Double(oy) + 0.5) * sy - 0.5))
            let y0 = Int(fy), y1 = min(y0 + 1, height - 1), ty = fy - Double(y0)
            for ox in 0..<newWidth {
                let fx = max(0, min(Double(width - 1), (Double(ox) + 0.5) * sx - 0.5))
                let x0 = Int(fx), x1 = min(x0 + 1, width - 1), tx = fx - Double(x0)
                for c in 0..<3 {
                    let a = Double(pixels[(y0 * width + x0) * 3 + c]), b = Double(pixels[(y0 * width + x1) * 3 + c])
                    let d = Double(pixels[(y1 * width + x0) * 3 + c]), e = Double(pixels[(y1 * width + x1) * 3 + c])
                    let v = (a * (1 - tx) + b * tx) * (1 - ty) + (d * (1 - tx) + e * tx) * ty
                    out[(oy * newWidth + ox) * 3 + c] = UInt8(clamping: Int(v.rounded()))
                }
            }
        }
        return RGBImage(width: newWidth, height: newHeight, pixels: out)
    }
}
