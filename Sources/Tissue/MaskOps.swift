import Imaging

/// The image operations behind tissue segmentation, on 8-bit single-channel rasters.
enum MaskOps {
    /// HSV saturation scaled to 0...255: (max - min) / max.
    static func saturation(_ image: RGBImage) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: image.width * image.height)
        image.pixels.withUnsafeBufferPointer { px in
            for i in 0..<out.count {
                let r = Int(px[3 * i]), g = Int(px[3 * i + 1]), b = Int(px[3 * i + 2])
                let hi = max(r, g, b), lo = min(r, g, b)
                out[i] = hi == 0 ? 0 : UInt8((255 * (hi - lo) + hi / 2) / hi)
            }
        }
        return out
    }

    /// Median over a k×k window (edges replicated), by a sliding 256-bin histogram per row.
    static func medianBlur(_ input: [UInt8], width: Int, height: Int, kernel: Int) -> [UInt8] {
        guard kernel > 1 else { return input }
        let r = kernel / 2
        let half = (kernel * kernel) / 2
        var out = [UInt8](repeating: 0, count: input.count)
        @inline(__always) func at(_ x: Int, _ y: Int) -> Int {
            Int(input[min(max(y, 0), height - 1) * width + min(max(x, 0), width - 1)])
        }
        var histogram = [Int](repeating: 0, count: 256)
        for y in 0..<height {
            for i in 0..<256 { histogram[i] = 0 }
            for dy in -r...r { for dx in -r...r { histogram[at(dx, y + dy)] += 1 } }
            for x in 0..<width {
                if x > 0 {
                    for dy in -r...r {
                        histogram[at(x - r - 1, y + dy)] -= 1
                        histogram[at(x + r, y + dy)] += 1
                    }
                }
                var count = 0, value = 0
                while true {
                    count += histogram[value]
                    if count > half { break }
                    value += 1
                }
                out[y * width + x] = UInt8(value)
            }
        }
        return out
    }

    /// Otsu's threshold: the level maximising between-class variance; pixels above it are foreground.
    static func otsuThreshold(_ values: [UInt8]) -> UInt8 {
        var histogram = [Double](repeating: 0, count: 256)
        for v in values { histogram[Int(v)] += 1 }
        let total = Double(values.count)
        let sumAll = (0..<256).reduce(0.0) { $0 + Double($1) * histogram[$1] }
        var weightBackground = 0.0, sumBackground = 0.0
        var best = 0.0, threshold = 0
        for t in 0..<256 {
            weightBackground += histogram[t]
            guard weightBackground > 0 else { continue }
            let weightForeground = total - weightBackground
            guard weightForeground > 0 else { break }
            sumBackground += Double(t) * histogram[t]
            let meanBackground = sumBackground / weightBackground
            let meanForeground = (sumAll - sumBackground) / weightForeground
            let between = weightBackground * weightForeground * (meanBackground - meanForeground) * (meanBackground - meanForeground)
            if between > best { best = between; threshold = t }
        }
        return UInt8(threshold)
    }

    /// Dilation followed by erosion with a (2r+1)² square, separably. Outside the image counts as
    /// background for dilation and as foreground for erosion, so closing never eats the border.
    /// 1 where a pixel is marker ink (`TileQuality.isInk`).
    static func inkPixels(_ image: RGBImage) -> [UInt8] {
        (0..<(image.width * image.height)).map { i in
            TileQuality.isInk(image.pixels[3 * i], image.pixels[3 * i + 1], image.pixels[3 * i + 2]) ? 1 : 0
        }
    }

    static func dilate(_ bits: [UInt8], width: Int, height: Int, radius: Int) -> [UInt8] {
        morph(bits, width: width, height: height, radius: radius, dilate: true)
    }

    static func close(_ bits: [UInt8], width: Int, height: Int, radius: Int) -> [UInt8] {
        guard radius > 0 else { return bits }
        let dilated = morph(bits, width: width, height: height, radius: radius, dilate: true)
        return morph(dilated, width: width, height: height, radius: radius, dilate: false)
    }

    private static func morph(_ bits: [UInt8], width: Int, height: Int, radius: Int, dilate: Bool) -> [UInt8] {
        let outside: UInt8 = dilate ? 0 : 1
        var horizontal = [UInt8](repeating: 0, count: bits.count)
        for y in 0..<height {
            for x in 0..<width {
                var v: UInt8 = dilate ? 0 : 1
                for dx in -radius...radius {
                    let xx = x + dx
                    let b = (xx < 0 || xx >= width) ? outside : bits[y * width + xx]
                    v = dilate ? max(v, b) : min(v, b)
                }
                horizontal[y * width + x] = v
            }
        }
        var out = [UInt8](repeating: 0, count: bits.count)
        for y in 0..<height {
            for x in 0..<width {
                var v: UInt8 = dilate ? 0 : 1
                for dy in -radius...radius {
                    let yy = y + dy
                    let b = (yy < 0 || yy >= height) ? outside : horizontal[yy * width + x]
                    v = dilate ? max(v, b) : min(v, b)
                }
                out[y * width + x] = v
            }
        }
        return out
    }

    /// Connected components of pixels equal to `value`; returns each component's pixel indices.
    static func components(_ bits: [UInt8], width: Int, height: Int, value: UInt8, eightConnected: Bool) -> [[Int]] {
        var seen = [Bool](repeating: false, count: bits.count)
        var result: [[Int]] = []
        var stack: [Int] = []
        for start in 0..<bits.count where bits[start] == value && !seen[start] {
            var component: [Int] = []
            seen[start] = true
            stack.append(start)
            while let p = stack.popLast() {
                component.append(p)
                let x = p % width, y = p / width
                for dy in -1...1 {
                    for dx in -1...1 where (dx != 0 || dy != 0) && (eightConnected || dx == 0 || dy == 0) {
                        let nx = x + dx, ny = y + dy
                        guard nx >= 0, nx < width, ny >= 0, ny < height else { continue }
                        let q = ny * width + nx
                        if bits[q] == value && !seen[q] { seen[q] = true; stack.append(q) }
                    }
                }
            }
            result.append(component)
        }
        return result
    }

    /// Fills background regions enclosed by tissue (not touching the border) smaller than `maxArea`.
    static func fillHoles(_ bits: [UInt8], width: Int, height: Int, maxArea: Int) -> [UInt8] {
        guard maxArea > 0 else { return bits }
        var out = bits
        for hole in components(bits, width: width, height: height, value: 0, eightConnected: false) where hole.count < maxArea {
            let touchesBorder = hole.contains { p in
                let x = p % width, y = p / width
                return x == 0 || y == 0 || x == width - 1 || y == height - 1
            }
            if !touchesBorder { for p in hole { out[p] = 1 } }
        }
        return out
    }

    static func removeSmallComponents(_ bits: [UInt8], width: Int, height: Int, minArea: Int) -> [UInt8] {
        guard minArea > 1 else { return bits }
        var out = bits
        for component in components(bits, width: width, height: height, value: 1, eightConnected: true) where component.count < minArea {
            for p in component { out[p] = 0 }
        }
        return out
    }
}
