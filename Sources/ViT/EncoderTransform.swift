import Imaging

extension TransformConfig {
    /// torchvision's Resize(size) on a PIL image, CenterCrop, ToTensor and Normalize: planar
    /// float32 [3, S, S] into `out` (S = `outputSize`).
    public func apply(_ image: RGBImage, into out: UnsafeMutablePointer<Float>) {
        let short = min(image.width, image.height), long = max(image.width, image.height)
        let longSide = resize * long / short
        let (w, h) = image.width <= image.height ? (resize, longSide) : (longSide, resize)
        var resized = image
        if w != image.width || h != image.height { resized = image.pillowResized(width: w, height: h, filter: interpolation) }
        let side = outputSize
        // Python's round() halves to even.
        let top = Int((Double(h - side) / 2).rounded(.toNearestOrEven)), left = Int((Double(w - side) / 2).rounded(.toNearestOrEven))
        let means = mean.map(Float.init), stds = std.map(Float.init)
        resized.pixels.withUnsafeBufferPointer { pixels in
            for c in 0..<3 {
                let plane = out + c * side * side
                for y in 0..<side {
                    for x in 0..<side {
                        let value = Float(pixels[((y + top) * w + x + left) * 3 + c]) / 255
                        plane[y * side + x] = (value - means[c]) / stds[c]
                    }
                }
            }
        }
    }

    public func apply(_ image: RGBImage) -> [Float] {
        var out = [Float](repeating: 0, count: 3 * outputSize * outputSize)
        out.withUnsafeMutableBufferPointer { apply(image, into: $0.baseAddress!) }
        return out
    }
}
