import Imaging
import NN

/// What feature extraction needs of an encoder, whichever it is (a published ViT, an SD-MAE
/// checkpoint): how a tile becomes its input, and its features.
public protocol PatchEncoder: AnyObject {
    /// Names the encoder in features files and reports ("uni_v1", "sdmae-96px-192d").
    var encoderName: String { get }
    var featureWidth: Int { get }
    /// The square tile (pixels) the encoder was made for, before its own transform: crops of
    /// larger labelled pictures take this size.
    var tileSize: Int { get }
    /// Side of the planar image `prepare` writes.
    var inputSize: Int { get }
    var precision: Precision { get set }
    /// One tile as the network reads it: planar floats [3, inputSize, inputSize].
    func prepare(_ image: RGBImage, into out: UnsafeMutablePointer<Float>)
    /// Features [batch, featureWidth] of prepared images.
    func features(images: UnsafePointer<Float>, batch: Int) throws -> [Float]
    /// The same architecture with fresh random weights: the baseline learning claims are read against.
    func randomlyInitialised(seed: UInt64) -> any PatchEncoder
}

extension VisionTransformer: PatchEncoder {
    public var encoderName: String { name }
    public var inputSize: Int { config.transform.outputSize }

    public func prepare(_ image: RGBImage, into out: UnsafeMutablePointer<Float>) {
        config.transform.apply(image, into: out)
    }

    /// A few images at a time: activations grow with the rows in flight, while 16 images' tokens
    /// already make products that run at speed.
    public func features(images: UnsafePointer<Float>, batch: Int) throws -> [Float] {
        let side = inputSize, plane = 3 * side * side, chunk = 16
        var out: [Float] = []
        out.reserveCapacity(batch * featureWidth)
        for start in stride(from: 0, to: batch, by: chunk) {
            out += try features(images + start * plane, batch: min(chunk, batch - start), side: side)
        }
        return out
    }

    public func randomlyInitialised(seed: UInt64) -> any PatchEncoder {
        let model = VisionTransformer(config: config, hiddenWidth: hiddenWidth, seed: seed)
        model.name = name + " (random init)"
        model.tileSize = tileSize
        model.precision = precision
        return model
    }
}
