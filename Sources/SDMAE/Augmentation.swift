import Foundation
import Imaging
import NN

/// The spec's augmentations, drawn from a generator the caller seeds per sample.
public struct Augmentation: Sendable {
    public var size: Int
    public var scale: ClosedRange<Double> = 0.2...1
    public var ratio: ClosedRange<Double> = 0.75...(4.0 / 3.0)
    public var flips = true
    /// Tissue has no up: any of the four right-angle rotations.
    public var rotations = true
    /// Brightness/contrast/saturation jitter strength; 0 disables it.
    public var colourJitter = 0.0

    public init(size: Int) { self.size = size }

    /// A random crop resized to `size`², flipped/rotated, as planar floats [3, size, size] in [0, 1].
    public func apply(_ image: RGBImage, using generator: inout SeededGenerator, into out: UnsafeMutablePointer<Float>) {
        let (x0, y0, w, h) = cropBox(width: image.width, height: image.height, using: &generator)
        let flip = flips && generator.next() & 1 == 1
        let turns = rotations ? Int(generator.next() % 4) : 0
        var brightness: Float = 1, contrast: Float = 1, saturation: Float = 1
        if colourJitter > 0 {
            let j = Float(colourJitter)
            brightness = 1 + (generator.uniform() * 2 - 1) * j
            contrast = 1 + (generator.uniform() * 2 - 1) * j
            saturation = 1 + (generator.uniform() * 2 - 1) * j
        }
        let s = size, plane = s * s
        let sx = Double(w) / Double(s), sy = Double(h) / Double(s)
        image.pixels.withUnsafeBufferPointer { px in
            for oy in 0..<s {
                for ox in 0..<s {
                    // Output pixel → position in the flipped/rotated crop → bilinear source sample.
                    var u = ox, v = oy
                    for _ in 0..<turns { (u, v) = (v, s - 1 - u) }
                    if flip { u = s - 1 - u }
                    let fx = min(max(Double(x0) + (Double(u) + 0.5) * sx - 0.5, 0), Double(image.width - 1))
                    let fy = min(max(Double(y0) + (Double(v) + 0.5) * sy - 0.5, 0), Double(image.height - 1))
                    let ix = Int(fx), iy = Int(fy)
                    let ix1 = min(ix + 1, image.width - 1), iy1 = min(iy + 1, image.height - 1)
                    let tx = Float(fx - Double(ix)), ty = Float(fy - Double(iy))
                    var rgb: (Float, Float, Float) = (0, 0, 0)
                    for c in 0..<3 {
                        let a = Float(px[(iy * image.width + ix) * 3 + c]), b = Float(px[(iy * image.width + ix1) * 3 + c])
                        let d = Float(px[(iy1 * image.width + ix) * 3 + c]), e = Float(px[(iy1 * image.width + ix1) * 3 + c])
                        let value = ((a * (1 - tx) + b * tx) * (1 - ty) + (d * (1 - tx) + e * tx) * ty) / 255
                        if c == 0 { rgb.0 = value } else if c == 1 { rgb.1 = value } else { rgb.2 = value }
                    }
                    if colourJitter > 0 {
                        let grey = 0.299 * rgb.0 + 0.587 * rgb.1 + 0.114 * rgb.2
                        func jitter(_ v: Float) -> Float {
                            let saturated = grey + (v - grey) * saturation
                            return min(1, max(0, (saturated * brightness - 0.5) * contrast + 0.5))
                        }
                        rgb = (jitter(rgb.0), jitter(rgb.1), jitter(rgb.2))
                    }
                    let o = oy * s + ox
                    out[o] = rgb.0
                    out[plane + o] = rgb.1
                    out[2 * plane + o] = rgb.2
                }
            }
        }
    }

    /// torchvision's RandomResizedCrop box: ten tries at a random area and aspect ratio, then the
    /// centred largest box of an allowed ratio.
    func cropBox(width: Int, height: Int, using generator: inout SeededGenerator) -> (Int, Int, Int, Int) {
        let area = Double(width * height)
        for _ in 0..<10 {
            let target = area * (scale.lowerBound + Double(generator.uniform()) * (scale.upperBound - scale.lowerBound))
            let logRatio = log(ratio.lowerBound) + Double(generator.uniform()) * (log(ratio.upperBound) - log(ratio.lowerBound))
            let aspect = exp(logRatio)
            let w = Int((target * aspect).squareRoot().rounded()), h = Int((target / aspect).squareRoot().rounded())
            if w > 0, h > 0, w <= width, h <= height {
                let x = Int(generator.next() % UInt64(width - w + 1)), y = Int(generator.next() % UInt64(height - h + 1))
                return (x, y, w, h)
            }
        }
        let aspect = Double(width) / Double(height)
        let w = aspect < ratio.lowerBound ? width : aspect > ratio.upperBound ? Int((Double(height) * ratio.upperBound).rounded()) : width
        let h = aspect < ratio.lowerBound ? Int((Double(width) / ratio.lowerBound).rounded()) : height
        return ((width - w) / 2, (height - h) / 2, w, h)
    }

    /// No augmentation: the whole patch resized to `size`² (for embedding and pictures).
    public static func plain(_ image: RGBImage, size: Int, into out: UnsafeMutablePointer<Float>) {
        let resized = image.resized(width: size, height: size)
        let plane = size * size
        for i in 0..<plane {
            for c in 0..<3 { out[c * plane + i] = Float(resized.pixels[i * 3 + c]) / 255 }
        }
    }
}
