import Foundation

/// Pillow's `Image.resize` for 8-bit RGB, bit for bit: the filter's support widens with the
/// downscale factor (antialiasing), coefficients are fixed point with 22 fractional bits, and the
/// horizontal pass rounds to 8 bits before the vertical one. Foundation-model transforms
/// (torchvision on a PIL image) are defined by these numbers, so features depend on matching them.
public enum PillowFilter: String, Sendable, Codable, CaseIterable {
    case bilinear, bicubic

    var support: Double { self == .bilinear ? 1 : 2 }

    func weight(_ x: Double) -> Double {
        let x = abs(x)
        switch self {
        case .bilinear:
            return x < 1 ? 1 - x : 0
        case .bicubic:
            let a = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
    }
}

extension RGBImage {
    public func pillowResized(width newWidth: Int, height newHeight: Int, filter: PillowFilter) -> RGBImage {
        var image = self
        if newWidth != width { image = image.resampledHorizontally(to: newWidth, filter: filter) }
        if newHeight != height { image = image.resampledVertically(to: newHeight, filter: filter) }
        return image
    }

    /// Pillow's precision: 32 bits less 8 for the pixel and 2 for the sign and headroom.
    private static let precisionBits = 22

    /// Per output pixel: the first input pixel and the fixed-point weights of those that follow.
    static func coefficients(input: Int, output: Int, filter: PillowFilter) -> [(first: Int, weights: [Int32])] {
        let scale = Double(input) / Double(output)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale, inverseScale = 1 / filterScale
        return (0..<output).map { index in
            let center = (Double(index) + 0.5) * scale
            let first = max(Int(center - support + 0.5), 0)
            let last = min(Int(center + support + 0.5), input)
            var weights = (first..<last).map { filter.weight((Double($0) - center + 0.5) * inverseScale) }
            let total = weights.reduce(0, +)
            if total != 0 { weights = weights.map { $0 / total } }
            let unit = Double(1 << precisionBits)
            return (first, weights.map { Int32($0 < 0 ? -0.5 + $0 * unit : 0.5 + $0 * unit) })
        }
    }

    /// The fixed-point sum rounded and clipped to 8 bits, as Pillow's clip8.
    @inline(__always)
    private static func clip8(_ sum: Int32) -> UInt8 { UInt8(clamping: sum >> Int32(precisionBits)) }

    private func resampledHorizontally(to newWidth: Int, filter: PillowFilter) -> RGBImage {
        let table = Self.coefficients(input: width, output: newWidth, filter: filter)
        var out = [UInt8](repeating: 0, count: newWidth * height * 3)
        let half = Int32(1) << Int32(Self.precisionBits - 1), width = width
        pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for y in 0..<height {
                    let row = source.baseAddress! + y * width * 3, outRow = target.baseAddress! + y * newWidth * 3
                    for (x, entry) in table.enumerated() {
                        var r = half, g = half, b = half
                        entry.weights.withUnsafeBufferPointer { w in
                            var p = row + entry.first * 3
                            for k in 0..<w.count {
                                r &+= Int32(p[0]) &* w[k]; g &+= Int32(p[1]) &* w[k]; b &+= Int32(p[2]) &* w[k]
                                p += 3
                            }
                        }
                        outRow[x * 3] = Self.clip8(r); outRow[x * 3 + 1] = Self.clip8(g); outRow[x * 3 + 2] = Self.clip8(b)
                    }
                }
            }
        }
        return RGBImage(width: newWidth, height: height, pixels: out)
    }

    /// Row by row: each output row is a weighted sum of whole input rows.
    private func resampledVertically(to newHeight: Int, filter: PillowFilter) -> RGBImage {
        let table = Self.coefficients(input: height, output: newHeight, filter: filter)
        let rowValues = width * 3
        var out = [UInt8](repeating: 0, count: rowValues * newHeight)
        var sums = [Int32](repeating: 0, count: rowValues)
        let half = Int32(1) << Int32(Self.precisionBits - 1)
        pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                sums.withUnsafeMutableBufferPointer { sums in
                    for (y, entry) in table.enumerated() {
                        for i in 0..<rowValues { sums[i] = half }
                        for (k, w) in entry.weights.enumerated() {
                            let row = source.baseAddress! + (entry.first + k) * rowValues
                            for i in 0..<rowValues { sums[i] &+= Int32(row[i]) &* w }
                        }
                        let outRow = target.baseAddress! + y * rowValues
                        for i in 0..<rowValues { outRow[i] = Self.clip8(sums[i]) }
                    }
                }
            }
        }
        return RGBImage(width: width, height: newHeight, pixels: out)
    }
}
