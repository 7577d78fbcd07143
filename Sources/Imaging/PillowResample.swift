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
        if newWidth != width { image = image.resampledRows(to: newWidth, filter: filter) }
        if newHeight != height { image = image.transposed().resampledRows(to: newHeight, filter: filter).transposed() }
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

    private func resampledRows(to newWidth: Int, filter: PillowFilter) -> RGBImage {
        let table = Self.coefficients(input: width, output: newWidth, filter: filter)
        var out = [UInt8](repeating: 0, count: newWidth * height * 3)
        let half = Int32(1) << Int32(Self.precisionBits - 1)
        pixels.withUnsafeBufferPointer { source in
            for y in 0..<height {
                let row = y * width * 3
                for (x, entry) in table.enumerated() {
                    for channel in 0..<3 {
                        var sum = half
                        for (i, w) in entry.weights.enumerated() { sum &+= Int32(source[row + (entry.first + i) * 3 + channel]) &* w }
                        out[(y * newWidth + x) * 3 + channel] = UInt8(clamping: sum >> Int32(Self.precisionBits))
                    }
                }
            }
        }
        return RGBImage(width: newWidth, height: height, pixels: out)
    }

    func transposed() -> RGBImage {
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<height {
            for x in 0..<width {
                let s = (y * width + x) * 3, d = (x * height + y) * 3
                out[d] = pixels[s]; out[d + 1] = pixels[s + 1]; out[d + 2] = pixels[s + 2]
            }
        }
        return RGBImage(width: height, height: width, pixels: out)
    }
}
