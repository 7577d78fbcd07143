import Console
import Dispatch
import Foundation
import Tiling
import Imaging
import NN
import Storage

/// Mean-pooled encoder features for every patch of a dataset, in dataset order.
public struct FeatureExtractor {
    public let model: SDMAEModel
    public var batchSize = 64
    public var workers = 2
    public var showProgress = true

    public init(model: SDMAEModel) { self.model = model }

    /// Images of `indices`, resized to the model's input, planar floats.
    public static func loadImages(_ dataset: PatchDataset, indices: [Int], size: Int, workers: Int) throws -> [Float] {
        try dataset.planarImages(indices, size: size, workers: workers) { image, _, out in Augmentation.plain(image, size: size, into: out) }
    }

    /// Features [count, width], row i for patch i.
    public func run(_ dataset: PatchDataset) throws -> [Float] {
        var features: [Float] = []
        features.reserveCapacity(dataset.count * model.config.width)
        try run(dataset) { _, batch in features += batch }
        return features
    }

    /// Streams features batch by batch (memory stays bounded whatever the dataset size):
    /// `consume` gets the dataset indices and their features [indices.count, width]. The next
    /// batch is decoded while this one runs through the encoder.
    public func run(_ dataset: PatchDataset, consume: ([Int], [Float]) throws -> Void) throws {
        let size = model.config.imageSize
        let progress = Progress("embed", total: dataset.count, enabled: showProgress)
        let batches = stride(from: 0, to: dataset.count, by: batchSize).map { Array($0..<min(dataset.count, $0 + batchSize)) }
        let queue = DispatchQueue(label: "embed-prefetch")
        final class Box: @unchecked Sendable { var result: Result<[Float], Error>? }
        func prefetch(_ indices: [Int]) -> (DispatchWorkItem, Box) {
            let box = Box()
            let item = DispatchWorkItem { box.result = Result { try Self.loadImages(dataset, indices: indices, size: size, workers: workers) } }
            queue.async(execute: item)
            return (item, box)
        }
        var next = batches.first.map(prefetch)
        for (i, indices) in batches.enumerated() {
            guard let (item, box) = next else { break }
            item.wait()
            next = i + 1 < batches.count ? prefetch(batches[i + 1]) : nil
            let images = try box.result!.get()
            try consume(indices, images.withUnsafeBufferPointer { model.features(images: $0.baseAddress!, batch: indices.count) })
            progress.advance(by: indices.count)
        }
        progress.finish()
    }

    /// Writes features as CSV (`name,f0,…`) or safetensors (`features` [N, D], names in metadata).
    public static func write(_ features: [Float], names: [String], width: Int, to path: String) throws {
        if path.hasSuffix(".safetensors") {
            let namesJSON = String(decoding: try JSONSerialization.data(withJSONObject: names), as: UTF8.self)
            try Safetensors.write([(name: "features", shape: [names.count, width], values: features)],
                                  metadata: ["names": namesJSON], to: path)
        } else {
            var text = CSV.row(["name"] + (0..<width).map { "f\($0)" })
            for (i, name) in names.enumerated() {
                text += CSV.row([name] + features[(i * width)..<((i + 1) * width)].map { String($0) })
            }
            try AtomicFile.write(Data(text.utf8), to: path)
        }
    }
}
