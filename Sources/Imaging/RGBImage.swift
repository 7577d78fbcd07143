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
    public func resized(width newWidth: Int, height newHeight: Int) -> RGBImage {
        if newWidth == width && newHeight == height { return self }
        if newWidth <= width && newHeight <= height { return areaAveraged(newWidth, newHeight) }
        return bilinear(newWidth, newHeight)
    }

    private func areaAveraged(_ newWidth: Int, _ newHeight: Int) -> RGBImage {
        var out = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
        let sx = Double(width) / Double(newWidth), sy = Double(height) / Double(newHeight)
        // Per output column: the covered source columns with their fractional weights.
        let columnSpans = (0..<newWidth).map { Self.coverage(Double($0) * sx, Double($0 + 1) * sx, limit: width) }
        pixels.withUnsafeBufferPointer { src in
            var sums = [Double](repeating: 0, count: 3)
            for oy in 0..<newHeight {
                let rowSpan = Self.coverage(Double(oy) * sy, Double(oy + 1) * sy, limit: height)
                for ox in 0..<newWidth {
                    sums[0] = 0; sums[1] = 0; sums[2] = 0
                    var weight = 0.0
                    for (y, wy) in rowSpan {
                        let rowBase = y * width
                        for (x, wx) in columnSpans[ox] {
                            let w = wx * wy
                            let i = (rowBase + x) * 3
                            sums[0] += w * Double(src[i]); sums[1] += w * Double(src[i + 1]); sums[2] += w * Double(src[i + 2])
                            weight += w
                        }
                    }
                    let o = (oy * newWidth + ox) * 3
                    for c in 0..<3 { out[o + c] = UInt8(clamping: Int((sums[c] / weight).rounded())) }
                }
            }
        }
        return RGBImage(width: newWidth, height: newHeight, pixels: out)
    }

    private static func coverage(_ start: Double, _ end: Double, limit: Int) -> [(Int, Double)] {
        var spans: [(Int, Double)] = []
        var i = Int(start)
        while Double(i) < end && i < limit {
            let w = min(end, Double(i + 1)) - max(start, Double(i))
            if w > 1e-9 { spans.append((i, w)) }
            i += 1
        }
        return spans
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
