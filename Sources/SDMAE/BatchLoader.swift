import Foundation
import Tiling
import Imaging
import NN

/// One batch of images, planar floats [batch, 3, size, size] in [0, 1].
public struct ImageBatch: Sendable {
    public var images: [Float]
    public var indices: [Int]
}

/// Mixes integers into a seed (SplitMix finaliser), so every sample of every step has its own
/// reproducible random stream whatever thread draws it.
public func mixSeed(_ values: UInt64...) -> UInt64 {
    var generator = SeededGenerator(seed: 0x5D4E_2F11)
    for v in values { generator = SeededGenerator(seed: generator.next() ^ v) }
    return generator.next()
}

/// Decodes and augments training batches on worker threads ahead of the trainer.
///
/// Batch `step` is a pure function of (seed, step): the epoch's permutation comes from
/// (seed, epoch) and each sample's augmentation from (seed, step, slot). A resumed run therefore
/// sees exactly the batches the killed run would have seen, and ranks of a data-parallel job
/// together see the batches of a one-process run, whatever their number.
public final class BatchLoader: @unchecked Sendable {
    public let dataset: PatchDataset
    public let batchSize: Int
    public let imageSize: Int
    public let augmentation: Augmentation
    public let seed: UInt64
    public let workers: Int
    /// The slots of each batch this process loads: all of them, or one rank's share of a
    /// data-parallel job's global batch (augmented as the same slots of a one-process run).
    public let share: Range<Int>
    public var stepsPerEpoch: Int { dataset.count / batchSize }

    private let condition = NSCondition()
    private var ready: [Int: Result<ImageBatch, Error>] = [:]
    private var nextToProduce = 0
    private var lastStep = 0
    private var stopped = false
    private let depth: Int
    /// Touched only by the producer thread.
    private var permutationCache: (epoch: Int, order: [Int])?

    public init(dataset: PatchDataset, batchSize: Int, share: Range<Int>? = nil, augmentation: Augmentation, seed: UInt64, workers: Int,
                depth: Int = 3) {
        self.dataset = dataset
        self.batchSize = batchSize
        self.share = share ?? 0..<batchSize
        imageSize = augmentation.size
        self.augmentation = augmentation
        self.seed = seed
        self.workers = max(1, workers)
        self.depth = depth
    }

    deinit { stop() }

    /// Starts producing batches `first..<end` in the background.
    public func start(first: Int, end: Int) {
        condition.lock()
        nextToProduce = first
        lastStep = end
        stopped = false
        condition.unlock()
        let thread = Thread { [weak self] in self?.produceLoop() }
        thread.name = "batch-loader"
        thread.start()
    }

    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Blocks until batch `step` is ready.
    public func batch(_ step: Int) throws -> ImageBatch {
        condition.lock()
        defer { condition.unlock() }
        while ready[step] == nil { condition.wait() }
        let result = ready.removeValue(forKey: step)!
        condition.broadcast()
        return try result.get()
    }

    private func produceLoop() {
        while true {
            condition.lock()
            while !stopped && nextToProduce < lastStep && ready.count >= depth { condition.wait() }
            if stopped || nextToProduce >= lastStep {
                condition.unlock()
                return
            }
            let step = nextToProduce
            nextToProduce += 1
            condition.unlock()
            let result = Result { try self.make(step) }
            condition.lock()
            ready[step] = result
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The dataset order of one epoch.
    func permutation(epoch: Int) -> [Int] {
        if let cached = permutationCache, cached.epoch == epoch { return cached.order }
        var generator = SeededGenerator(seed: mixSeed(seed, 1, UInt64(epoch)))
        var order = Array(0..<dataset.count)
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(generator.next() % UInt64(i + 1)))
        }
        permutationCache = (epoch, order)
        return order
    }

    public func make(_ step: Int) throws -> ImageBatch {
        let epoch = step / stepsPerEpoch, position = step % stepsPerEpoch
        let order = permutation(epoch: epoch)
        let first = position * batchSize
        let indices = Array(order[(first + share.lowerBound)..<(first + share.upperBound)])
        let (seed, augmentation, offset) = (seed, augmentation, share.lowerBound)
        let images = try dataset.planarImages(indices, size: imageSize, workers: workers) { image, slot, out in
            var generator = SeededGenerator(seed: mixSeed(seed, 2, UInt64(step), UInt64(offset + slot)))
            augmentation.apply(image, using: &generator, into: out)
        }
        return ImageBatch(images: images, indices: indices)
    }
}
