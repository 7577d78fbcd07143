import Console
import Dispatch
import Foundation
import Tiling
import Imaging
import NN
import Storage
import ViT

/// An SD-MAE checkpoint's encoder as a patch encoder: tiles resized to its input, features
/// the mean of all tokens.
extension SDMAEModel: PatchEncoder {
    public var encoderName: String { "sdmae-\(config.imageSize)px-\(config.width)d" }
    public var featureWidth: Int { config.width }
    public var tileSize: Int { config.imageSize }
    public var inputSize: Int { config.imageSize }

    public func prepare(_ image: RGBImage, into out: UnsafeMutablePointer<Float>) {
        Augmentation.plain(image, size: config.imageSize, into: out)
    }

    public func randomlyInitialised(seed: UInt64) -> any PatchEncoder { SDMAEModel(config: config, seed: seed) }
}

/// Encoder features for every patch of a dataset, in dataset order.
public struct FeatureExtractor {
    public let encoder: any PatchEncoder
    public var batchSize = 64
    public var workers = 2
    public var showProgress = true

    public init(encoder: any PatchEncoder) { self.encoder = encoder }

    /// Images of `indices` as the encoder reads them, planar floats.
    public static func loadImages(_ dataset: PatchDataset, indices: [Int], encoder: any PatchEncoder, workers: Int) throws -> [Float] {
        let box = UncheckedEncoder(encoder)
        return try dataset.planarImages(indices, size: encoder.inputSize, workers: workers) { image, _, out in box.encoder.prepare(image, into: out) }
    }

    /// Features [count, width], row i for patch i.
    public func run(_ dataset: PatchDataset) throws -> [Float] {
        var features: [Float] = []
        features.reserveCapacity(dataset.count * encoder.featureWidth)
        try run(dataset) { _, batch in features += batch }
        return features
    }

    /// Streams features batch by batch (memory stays bounded whatever the dataset size):
    /// `consume` gets the dataset indices and their features [indices.count, width]. The next
    /// batch is decoded while this one runs through the encoder.
    public func run(_ dataset: PatchDataset, consume: ([Int], [Float]) throws -> Void) throws {
        let encoder = encoder
        let progress = ProgressMeter("embed", total: dataset.count, enabled: showProgress)
        let batches = stride(from: 0, to: dataset.count, by: batchSize).map { Array($0..<min(dataset.count, $0 + batchSize)) }
        let queue = DispatchQueue(label: "embed-prefetch")
        final class Box: @unchecked Sendable { var result: Result<[Float], Error>? }
        func prefetch(_ indices: [Int]) -> (DispatchWorkItem, Box) {
            let box = Box()
            let item = DispatchWorkItem { box.result = Result { try Self.loadImages(dataset, indices: indices, encoder: encoder, workers: workers) } }
            queue.async(execute: item)
            return (item, box)
        }
        var next = batches.first.map(prefetch)
        for (i, indices) in batches.enumerated() {
            guard let (item, box) = next else { break }
            item.wait()
            next = i + 1 < batches.count ? prefetch(batches[i + 1]) : nil
            let images = try box.result!.get()
            try consume(indices, images.withUnsafeBufferPointer { try encoder.features(images: $0.baseAddress!, batch: indices.count) })
            progress.advance(by: indices.count)
        }
        progress.finish()
    }

    /// Writes features as CSV (`name,f0,…`) or safetensors (`features` [N, D], names and the
    /// encoder's name in metadata).
    public static func write(_ features: [Float], names: [String], width: Int, encoder: String, to path: String) throws {
        if path.hasSuffix(".safetensors") {
            let namesJSON = try String(decoding: JSONSerialization.data(withJSONObject: names), as: UTF8.self)
            try Safetensors.write([(name: "features", shape: [names.count, width], values: features)],
                                  metadata: ["names": namesJSON, "encoder": encoder], to: path)
        } else {
            var text = CSV.row(["name"] + (0..<width).map { "f\($0)" })
            for (i, name) in names.enumerated() {
                text += CSV.row([name] + features[(i * width)..<((i + 1) * width)].map { String($0) })
            }
            try AtomicFile.write(Data(text.utf8), to: path)
        }
    }
}

/// `prepare` only reads the encoder's transform settings, so the prefetch threads may share it.
private struct UncheckedEncoder: @unchecked Sendable {
    let encoder: any PatchEncoder
    init(_ encoder: any PatchEncoder) { self.encoder = encoder }
}
