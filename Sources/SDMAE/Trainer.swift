import Console
import Foundation
import Tiling
import NN
import Storage

public struct TrainingOptions: Codable, Equatable, Sendable {
    public var epochs = 10
    public var batchSize = 64
    /// MAE's base learning rate; the applied peak is base · batch / 256.
    public var baseLearningRate = 1.5e-4
    public var minimumLearningRate = 1e-6
    public var warmupEpochs = 1.0
    public var weightDecay = 0.05
    public var beta1 = 0.9
    public var beta2 = 0.95
    public var seed: UInt64 = 0
    public var checkpointEvery = 100
    public var loaderWorkers = 2
    public var colourJitter = 0.0
    /// Keep every checkpoint (for accuracy-versus-time curves), not only the newest.
    public var keepsCheckpoints = false
    /// Matrix-product arithmetic; nil is fp32 (runs recorded before the option existed).
    public var precision: Precision?

    public init() {}
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case nonFinite(step: Int, what: String, checkpoint: String?)
    case notEnoughData(patches: Int, batch: Int)
    case incompatibleResume(path: String, reason: String)

    public var description: String {
        switch self {
        case let .nonFinite(step, what, checkpoint):
            return "step \(step): \(what) is not finite; training stopped"
                + (checkpoint.map { ". The last good checkpoint is \($0)" } ?? " before any checkpoint was written")
        case let .notEnoughData(patches, batch): return "\(patches) patches cannot fill one batch of \(batch)"
        case let .incompatibleResume(path, reason): return "\(path): cannot resume: \(reason)"
        }
    }
}

/// One line of metrics.csv.
public struct StepRecord: Sendable {
    public var step: Int
    public var epoch: Int
    public var learningRate: Double
    public var losses: StepLosses
    public var gradientNorm: Double
    public var imagesPerSecond: Double
    public var collapse: CollapseWatch.Kind

    public static let header = "step,epoch,lr,loss,l_rec,l_sd,teacher_entropy,prototype_entropy,grad_norm,img_per_s,collapse\n"

    var csvLine: String {
        String(format: "%d,%d,%.6e,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.2f,", step, epoch, learningRate, losses.total,
               losses.reconstruction, losses.distillation, losses.teacherEntropy, losses.prototypeEntropy, gradientNorm, imagesPerSecond)
            + collapse.rawValue + "\n"
    }
}

/// Pretrains SD-MAE on a patch dataset, with checkpoints that let a killed run resume exactly.
public final class Trainer {
    public let model: SDMAEModel
    public let options: TrainingOptions
    public let runDirectory: String
    let loader: BatchLoader
    let optimiser: AdamW
    let schedule: WarmupCosineSchedule
    public var showProgress = true

    public var totalSteps: Int { options.epochs * loader.stepsPerEpoch }

    public init(config: SDMAEConfig, options: TrainingOptions, dataset: PatchDataset, runDirectory: String) throws {
        guard dataset.count >= options.batchSize else { throw TrainingError.notEnoughData(patches: dataset.count, batch: options.batchSize) }
        model = SDMAEModel(config: config, seed: options.seed)
        model.precision = options.precision ?? .fp32
        self.options = options
        self.runDirectory = runDirectory
        var augmentation = Augmentation(size: config.imageSize)
        augmentation.colourJitter = options.colourJitter
        loader = BatchLoader(dataset: dataset, batchSize: options.batchSize, augmentation: augmentation, seed: options.seed,
                             workers: options.loaderWorkers)
        let peak = options.baseLearningRate * Double(options.batchSize) / 256
        optimiser = AdamW(parameters: model.parameters, learningRate: Float(peak), beta1: Float(options.beta1),
                          beta2: Float(options.beta2), weightDecay: Float(options.weightDecay))
        let steps = options.epochs * (dataset.count / options.batchSize)
        schedule = WarmupCosineSchedule(peak: peak, minimum: options.minimumLearningRate,
                                        warmupSteps: Int(options.warmupEpochs * Double(dataset.count / options.batchSize)), totalSteps: steps)
    }

    /// Trains to the end (or from the last checkpoint when `resume`); returns the final model path.
    @discardableResult
    public func run(resume: Bool, stopAfter: Int? = nil) throws -> String {
        try FileManager.default.createDirectory(atPath: runDirectory + "/" + RunFiles.checkpoints, withIntermediateDirectories: true)
        var step = 0
        var lastCheckpoint: String?
        if resume, let pointer = try readPointer() {
            step = try restore(pointer)
            lastCheckpoint = runDirectory + "/" + pointer.model
        } else {
            try AtomicFile.write(Data(StepRecord.header.utf8), to: runDirectory + "/" + RunFiles.metrics)
        }
        let end = min(totalSteps, stopAfter ?? totalSteps)
        guard step < end else { return try finish(step: step) }

        let metrics = try MetricsLog(path: runDirectory + "/" + RunFiles.metrics, keepingStepsBefore: step)
        loader.start(first: step, end: end)
        defer { loader.stop() }
        let progress = Progress("pretrain", total: end - step, enabled: showProgress)
        let config = model.config
        let collapse = CollapseWatch(prototypes: config.prototypes, after: schedule.warmupSteps, active: config.distillationWeight > 0)
        var warned = Set<CollapseWatch.Kind>()  // said once per kind, then shown in the status and metrics.csv
        while step < end {
            let started = Date()
            let batch = try loader.batch(step)
            var generator = SeededGenerator(seed: mixSeed(options.seed, 3, UInt64(step)))
            let mask = TokenMask.random(batch: options.batchSize, tokens: config.tokens, masked: config.maskedTokens, using: &generator)
            optimiser.learningRate = Float(schedule.learningRate(at: step))
            let losses = batch.images.withUnsafeBufferPointer { model.forward(images: $0.baseAddress!, batch: options.batchSize, mask: mask) }
            guard losses.total.isFinite else {
                throw TrainingError.nonFinite(step: step, what: "the loss", checkpoint: lastCheckpoint)
            }
            optimiser.zeroGradients()
            model.backward()
            let norm = optimiser.gradientNorm()
            guard norm.isFinite else { throw TrainingError.nonFinite(step: step, what: "the gradient norm", checkpoint: lastCheckpoint) }
            optimiser.update()
            model.refreshLowPrecisionWeights()
            model.updateCenter()
            step += 1
            let rate = Double(options.batchSize) / Date().timeIntervalSince(started)
            let warning = collapse.check(losses, step: step)
            try metrics.append(StepRecord(step: step, epoch: (step - 1) / loader.stepsPerEpoch, learningRate: Double(optimiser.learningRate),
                                          losses: losses, gradientNorm: norm, imagesPerSecond: rate, collapse: warning?.kind ?? .none))
            if let warning, !warned.contains(warning.kind) {
                warned.insert(warning.kind)
                progress.note("step \(step): \(warning.message)")
            }
            progress.advance(status: String(format: "loss %.4f rec %.4f sd %.4f H(P) %.2f used %.0f %.1f img/s%@",
                                            losses.total, losses.reconstruction, losses.distillation, losses.teacherEntropy,
                                            exp(losses.prototypeEntropy), rate, warning == nil ? "" : " COLLAPSE?"))
            if step % options.checkpointEvery == 0 || step == end {
                lastCheckpoint = try writeCheckpoint(step: step)
            }
        }
        progress.finish()
        return try finish(step: step)
    }

    private func finish(step: Int) throws -> String {
        let path = runDirectory + "/" + RunFiles.finalModel
        if step == totalSteps { try model.writeWeights(to: path, step: step) }
        return path
    }

    /// Writes both files of a checkpoint, then the pointer; keeps the previous checkpoint until
    /// the new one is complete.
    private func writeCheckpoint(step: Int) throws -> String {
        let name = String(format: "%@/step-%08d", RunFiles.checkpoints, step)
        let pointer = CheckpointPointer(step: step, model: name + ".safetensors", optimizer: name + ".optimizer.safetensors")
        try model.writeWeights(to: runDirectory + "/" + pointer.model, step: step)
        try optimiser.writeState(to: runDirectory + "/" + pointer.optimizer)
        let previous = try readPointer()
        try AtomicFile.write(try JSONFile.encode(pointer), to: runDirectory + "/" + RunFiles.latest)
        if let previous, previous.model != pointer.model, !options.keepsCheckpoints {
            try? FileManager.default.removeItem(atPath: runDirectory + "/" + previous.model)
            try? FileManager.default.removeItem(atPath: runDirectory + "/" + previous.optimizer)
        }
        return runDirectory + "/" + pointer.model
    }

    private func readPointer() throws -> CheckpointPointer? {
        let path = runDirectory + "/" + RunFiles.latest
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do { return try JSONDecoder().decode(CheckpointPointer.self, from: data) } catch {
            throw TrainingError.incompatibleResume(path: path, reason: "unreadable checkpoint pointer")
        }
    }

    private func restore(_ pointer: CheckpointPointer) throws -> Int {
        let modelPath = runDirectory + "/" + pointer.model
        let (config, tensors) = try SDMAEModel.readCheckpoint(path: modelPath)
        guard config == model.config else {
            throw TrainingError.incompatibleResume(path: modelPath, reason: "the checkpoint's model config differs from this run's")
        }
        try model.load(tensors, path: modelPath)
        model.refreshLowPrecisionWeights()
        try optimiser.readState(from: runDirectory + "/" + pointer.optimizer)
        guard optimiser.step == pointer.step else {
            throw TrainingError.incompatibleResume(path: modelPath, reason: "optimiser state is from step \(optimiser.step), weights from \(pointer.step)")
        }
        return pointer.step
    }
}

/// metrics.csv, appended a line per step and flushed; on resume the lines after the checkpoint
/// (written by the killed run) are dropped so the file reads as one uninterrupted run.
final class MetricsLog {
    private let handle: FileHandle

    init(path: String, keepingStepsBefore step: Int) throws {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? StepRecord.header
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        if lines.first.map({ $0 + "\n" }) != StepRecord.header { lines.insert(String(StepRecord.header.dropLast()), at: 0) }
        lines = [lines[0]] + lines.dropFirst().filter { line in (Int(line.prefix { $0 != "," }) ?? Int.max) <= step }
        try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: path)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw StorageError.cannotOpen(path: path, reason: "cannot append") }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    deinit { try? handle.close() }

    func append(_ record: StepRecord) throws {
        try handle.write(contentsOf: Data(record.csvLine.utf8))
    }
}
