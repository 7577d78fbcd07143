import Console
import Cluster
import Foundation
import Tiling
import NN
import Storage
import ViT

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
    /// DINO's teacher-temperature warm-up: τt rises linearly from this value to the config's over
    /// `teacherTemperatureWarmupEpochs`; nil keeps τt constant.
    public var teacherTemperatureWarmupStart: Double?
    public var teacherTemperatureWarmupEpochs = 0.0
    /// Keep every checkpoint (for accuracy-versus-time curves), not only the newest.
    public var keepsCheckpoints = false
    /// Matrix-product arithmetic; nil is fp32 (runs recorded before the option existed).
    public var precision: Precision?
    /// How the new model's weights are drawn; nil is Xavier (runs recorded before the option existed).
    public var initialisation: WeightInitialisation?
    /// Set when the model adapts a published encoder (`SDMAEConfig.encoderStart`).
    public var adaptation: Adaptation?

    public init() {}
}

/// Adapting a published encoder: where its weights are and how fast its layers learn (the new
/// decoder and heads learn at the full rate).
public struct Adaptation: Codable, Equatable, Sendable {
    public var weights: String
    /// The learning rate of the encoder's last block, relative to the new parts'.
    public var encoderLearningRateScale = 0.1
    /// Each block below learns this much slower than the one above (BEiT's layer-wise decay).
    public var layerDecay = 0.75
    /// The first blocks, with the patch embedding and tokens, stay as published.
    public var frozenBlocks = 0

    public init(weights: String) { self.weights = weights }
}

public enum TrainingError: ExitStatusError, CustomStringConvertible, Equatable {
    case nonFinite(step: Int, what: String, checkpoint: String?)
    case notEnoughData(patches: Int, batch: Int)
    case nothingToReconstruct(maskRatio: Double, tokens: Int)
    case incompatibleResume(path: String, reason: String)
    case unsupportedWithRanks(String)
    case noWeightsToAdapt(encoder: String)

    /// Options that cannot work over this many ranks are the command's fault.
    public var exitStatus: Int32 {
        if case .unsupportedWithRanks = self { return 2 }
        return 1
    }

    public var description: String {
        switch self {
        case let .nonFinite(step, what, checkpoint):
            return "step \(step): \(what) is not finite; training stopped"
                + (checkpoint.map { ". The last good checkpoint is \($0)" } ?? " before any checkpoint was written")
        case let .notEnoughData(patches, batch): return "\(patches) patches cannot fill one batch of \(batch)"
        case let .nothingToReconstruct(ratio, tokens):
            return "mask ratio \(ratio) hides none of the \(tokens) tokens per image: there is nothing to reconstruct"
        case let .incompatibleResume(path, reason): return "\(path): cannot resume: \(reason)"
        case let .unsupportedWithRanks(message): return message
        case let .noWeightsToAdapt(encoder): return "adapting \(encoder) needs its weights"
        }
    }
}

/// A value that moves linearly from `from` to `to` over `steps`, then stays (DINO's teacher
/// temperature).
struct LinearWarmup: Sendable {
    var from: Double
    var to: Double
    var steps: Int

    func value(at step: Int) -> Double {
        step < steps ? from + (to - from) * Double(step) / Double(steps) : to
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

    /// Seconds this step waited in collectives (a data-parallel job's averaging; 0 for one process).
    public var synchronisation: Double

    public static let header = "step,epoch,lr,loss,l_rec,l_sd,teacher_entropy,prototype_entropy,grad_norm,img_per_s,collapse,sync_ms\n"

    var csvLine: String {
        String(format: "%d,%d,%.6e,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.2f,", step, epoch, learningRate, losses.total,
               losses.reconstruction, losses.distillation, losses.teacherEntropy, losses.prototypeEntropy, gradientNorm, imagesPerSecond)
            + collapse.rawValue + String(format: ",%.2f\n", synchronisation * 1000)
    }
}

/// Pretrains SD-MAE on a patch dataset, with checkpoints that let a killed run resume exactly.
///
/// In a data-parallel job every rank runs a Trainer on its share of each global batch
/// (`options.batchSize` is the global batch); gradients, losses and the centre's statistics are
/// averaged over the ranks, so the job takes the steps a one-process run with the same global
/// batch would take. The leader alone writes metrics and checkpoints.
public final class Trainer {
    public let model: SDMAEModel
    public let options: TrainingOptions
    public let runDirectory: String
    public let group: ProcessGroup
    let loader: BatchLoader
    let optimiser: AdamW
    let schedule: WarmupCosineSchedule
    let teacherTemperatures: LinearWarmup
    /// This rank's images of each global batch.
    let share: Range<Int>
    /// Every gradient, packed for the ranks' averaging.
    private let gradients: Buffer
    public var showProgress = true

    public var totalSteps: Int { options.epochs * loader.stepsPerEpoch }
    public var patches: Int { loader.dataset.count }

    public init(config: SDMAEConfig, options: TrainingOptions, dataset: PatchDataset, runDirectory: String,
                group: ProcessGroup = .single) throws {
        guard dataset.count >= options.batchSize else { throw TrainingError.notEnoughData(patches: dataset.count, batch: options.batchSize) }
        // The reconstruction loss is a mean over the hidden tokens: with none it is 0/0.
        guard config.maskedTokens >= 1 else { throw TrainingError.nothingToReconstruct(maskRatio: config.maskRatio, tokens: config.tokens) }
        guard options.batchSize % group.size == 0 else {
            throw TrainingError.unsupportedWithRanks("the batch of \(options.batchSize) does not split evenly over \(group.size) ranks")
        }
        if group.size > 1, config.distillationWeight > 0, config.teacherTargets != .centred {
            throw TrainingError.unsupportedWithRanks("\(config.teacherTargets.rawValue) teacher targets balance over the whole batch, "
                                                     + "which no rank holds; run them as one process or use centred targets")
        }
        if group.size > 1, config.distillationWeight > 0, config.meanEntropyWeight > 0 {
            throw TrainingError.unsupportedWithRanks("the mean-entropy term needs the whole batch's distributions, which no rank holds; "
                                                     + "run it as one process")
        }
        model = try Self.startingModel(config, options)
        model.precision = options.precision ?? .fp32
        self.options = options
        self.runDirectory = runDirectory
        self.group = group
        let local = options.batchSize / group.size
        share = (group.rank * local)..<((group.rank + 1) * local)
        var augmentation = Augmentation(size: config.imageSize)
        augmentation.colourJitter = options.colourJitter
        loader = BatchLoader(dataset: dataset, batchSize: options.batchSize, share: share, augmentation: augmentation, seed: options.seed,
                             workers: options.loaderWorkers)
        let peak = options.baseLearningRate * Double(options.batchSize) / 256
        optimiser = AdamW(parameters: model.parameters, learningRate: Float(peak), beta1: Float(options.beta1),
                          beta2: Float(options.beta2), weightDecay: Float(options.weightDecay))
        let stepsPerEpoch = dataset.count / options.batchSize
        schedule = WarmupCosineSchedule(peak: peak, minimum: options.minimumLearningRate,
                                        warmupSteps: Int(options.warmupEpochs * Double(stepsPerEpoch)), totalSteps: options.epochs * stepsPerEpoch)
        teacherTemperatures = LinearWarmup(from: options.teacherTemperatureWarmupStart ?? config.teacherTemperature, to: config.teacherTemperature,
                                           steps: Int(options.teacherTemperatureWarmupEpochs * Double(stepsPerEpoch)))
        gradients = Buffer(count: group.size > 1 ? model.parameters.reduce(0) { $0 + $1.count } : 0)
    }

    /// Trains to the end (or from the last checkpoint when `resume`); returns the final model path.
    @discardableResult
    public func run(resume: Bool, stopAfter: Int? = nil) throws -> String {
        try checkSameData()
        var step = try group.agree(Result { group.isLeader ? try start(resume: resume) : 0 }, what: "reading the last checkpoint")
        step = try synchroniseState(from: step)
        var lastCheckpoint = step > 0 ? try readPointer().map { runDirectory + "/" + $0.model } : nil
        let end = min(totalSteps, stopAfter ?? totalSteps)
        guard step < end else { return try finish(step: step) }

        let metrics = group.isLeader ? try MetricsLog(path: runDirectory + "/" + RunFiles.metrics, keepingStepsBefore: step) : nil
        loader.start(first: step, end: end)
        defer { loader.stop() }
        let progress = ProgressMeter("pretrain", total: end - step, enabled: showProgress && group.isLeader)
        let config = model.config
        let collapse = CollapseWatch(prototypes: config.prototypes, after: schedule.warmupSteps, active: config.distillationWeight > 0)
        var warned = Set<CollapseWatch.Kind>()  // said once per kind, then shown in the status and metrics.csv
        while step < end {
            let started = Date()
            let (losses, norm, synchronisation) = try trainStep(step, lastCheckpoint: lastCheckpoint)
            step += 1
            let rate = Double(options.batchSize) / Date().timeIntervalSince(started)
            let warning = collapse.check(losses, step: step)
            try metrics?.append(StepRecord(step: step, epoch: (step - 1) / loader.stepsPerEpoch, learningRate: Double(optimiser.learningRate),
                                           losses: losses, gradientNorm: norm, imagesPerSecond: rate, collapse: warning?.kind ?? .none,
                                           synchronisation: synchronisation))
            if let warning, !warned.contains(warning.kind), group.isLeader {
                warned.insert(warning.kind)
                progress.note("step \(step): \(warning.message)")
            }
            progress.advance(status: String(format: "loss %.4f rec %.4f sd %.4f H(P) %.2f used %.0f %.1f img/s%@",
                                            losses.total, losses.reconstruction, losses.distillation, losses.teacherEntropy,
                                            exp(losses.prototypeEntropy), rate, warning == nil ? "" : " COLLAPSE?"))
            if step % options.checkpointEvery == 0 || step == end {
                let written = Result { group.isLeader ? try writeCheckpoint(step: step) : nil }
                lastCheckpoint = try group.agree(written, what: "writing the checkpoint of step \(step)") ?? lastCheckpoint
            }
        }
        progress.finish()
        return try finish(step: step)
    }

    /// One optimiser step on the batch of `step`, every rank together: forward on this rank's
    /// images, losses and gradients averaged over the ranks, AdamW, the teacher centre.
    private func trainStep(_ step: Int, lastCheckpoint: String?) throws -> (losses: StepLosses, gradientNorm: Double, synchronisation: Double) {
        let config = model.config
        var synchronisation = 0.0
        let batch = Result { try loader.batch(step) }
        var generator = SeededGenerator(seed: mixSeed(options.seed, 3, UInt64(step)))
        // The whole batch's masks, drawn as one process draws them; this rank keeps its images'.
        let mask = TokenMask.random(batch: options.batchSize, tokens: config.tokens, masked: config.maskedTokens, using: &generator)
            .images(share)
        optimiser.learningRate = Float(schedule.learningRate(at: step))
        model.teacherTemperature = Float(teacherTemperatures.value(at: step))
        var losses = StepLosses(reconstruction: 0, distillation: 0, total: 0, teacherEntropy: 0, prototypeEntropy: 0)
        if case let .success(batch) = batch {
            losses = try batch.images.withUnsafeBufferPointer { try model.forward(images: $0.baseAddress!, batch: share.count, mask: mask) }
        }
        let centreSums: [Float]
        (losses, centreSums) = try averageOverRanks(losses, batch: batch, waited: &synchronisation)
        guard losses.total.isFinite else { throw TrainingError.nonFinite(step: step, what: "the loss", checkpoint: lastCheckpoint) }
        optimiser.zeroGradients()
        try model.backward()
        try averageGradients(step: step, waited: &synchronisation)
        let norm = optimiser.gradientNorm()
        guard norm.isFinite else { throw TrainingError.nonFinite(step: step, what: "the gradient norm", checkpoint: lastCheckpoint) }
        optimiser.update()
        model.refreshLowPrecisionWeights()
        model.updateCenter(sums: centreSums, images: options.batchSize)
        return (losses, norm, synchronisation)
    }

    /// The leader's first step: the last checkpoint's when resuming, else 0 with a fresh metrics file.
    private func start(resume: Bool) throws -> Int {
        try FileManager.default.createDirectory(atPath: runDirectory + "/" + RunFiles.checkpoints, withIntermediateDirectories: true)
        if resume, let pointer = try readPointer() { return try restore(pointer) }
        try AtomicFile.write(Data(StepRecord.header.utf8), to: runDirectory + "/" + RunFiles.metrics)
        return 0
    }

    private func finish(step: Int) throws -> String {
        let path = runDirectory + "/" + RunFiles.finalModel
        if step == totalSteps, group.isLeader {
            try model.writeWeights(to: path, step: step)
            try model.writeAdaptedEncoder(into: runDirectory)
        }
        return path
    }

    /// A new SD-MAE, or one around the published encoder of `config.encoderStart`, loaded from
    /// its weights with the adaptation's learning rates.
    static func startingModel(_ config: SDMAEConfig, _ options: TrainingOptions) throws -> SDMAEModel {
        guard var start = config.encoderStart else {
            return SDMAEModel(config: config, seed: options.seed, initialisation: options.initialisation ?? .xavier)
        }
        guard let adaptation = options.adaptation else { throw TrainingError.noWeightsToAdapt(encoder: start.name) }
        let vit = try VisionTransformer.load(config: start.config, weights: adaptation.weights, trains: true)
        vit.name = start.name
        vit.setLearningRates(scale: adaptation.encoderLearningRateScale, layerDecay: adaptation.layerDecay, frozen: adaptation.frozenBlocks)
        start.hiddenWidth = vit.hiddenWidth
        var config = config
        config.encoderStart = start
        return SDMAEModel(config: config, seed: options.seed, published: vit)
    }

    // MARK: Data parallelism (no-ops for one process)

    /// Refuses ranks that see different patches: each would then train on a different "global" batch.
    private func checkSameData() throws {
        guard group.size > 1 else { return }
        let dataset = loader.dataset
        let hash = fnv1a((0..<dataset.count).map(dataset.name).joined(separator: "\n"))
        let mine = "\(dataset.count) patches, names hash \(String(hash, radix: 16))"
        let leaders = try String(decoding: group.broadcast(Data(mine.utf8), what: "comparing the ranks' patch lists"), as: UTF8.self)
        let same: Result<Void, Error> = mine == leaders ? .success(()) : .failure(TrainingError.unsupportedWithRanks(
            "rank \(group.rank) sees \(mine), rank 0 \(leaders): every rank must read the same patch folders"))
        try group.agree(same, what: "comparing the ranks' patch lists")
    }

    /// Gives every rank the leader's step, weights, optimiser state and centre (after a resume).
    private func synchroniseState(from step: Int) throws -> Int {
        guard group.size > 1 else { return step }
        let leaders = try Int(String(decoding: group.broadcast(Data(String(step).utf8), what: "sharing the first step"), as: UTF8.self)) ?? 0
        guard leaders > 0 else { return leaders }
        for (index, parameter) in model.parameters.enumerated() {
            try group.broadcast(parameter.value.pointer, count: parameter.count, what: "sharing the checkpoint's weights")
            try group.broadcast(optimiser.firstMoments[index].pointer, count: parameter.count, what: "sharing the optimiser state")
            try group.broadcast(optimiser.secondMoments[index].pointer, count: parameter.count, what: "sharing the optimiser state")
        }
        try model.center.withUnsafeMutableBufferPointer { centre in
            try group.broadcast(centre.baseAddress!, count: centre.count, what: "sharing the teacher centre")
        }
        optimiser.restore(step: leaders)
        model.refreshLowPrecisionWeights()
        return leaders
    }

    /// The global batch's losses and centre statistics. Every rank reports whether it could read
    /// its batch, so a rank's unreadable patch stops all of them at the same step.
    private func averageOverRanks(_ losses: StepLosses, batch: Result<ImageBatch, Error>, waited: inout Double) throws -> (StepLosses, [Float]) {
        guard group.size > 1 else {
            _ = try batch.get()
            return (losses, model.centreSums())
        }
        let k = model.config.prototypes
        let failed = (try? batch.get()) == nil
        let centre = failed ? [Float](repeating: 0, count: k) : model.centreSums()
        let distribution = failed ? [Float](repeating: 0, count: share.count * k) : model.teacherDistribution
        var totals = [failed ? 1 : 0, losses.reconstruction, losses.distillation, losses.teacherEntropy]
        totals += (0..<k).map { j in (0..<share.count).reduce(0.0) { $0 + Double(distribution[$1 * k + j]) } }
        totals += centre.map(Double.init)
        try timed(&waited) { try group.sum(&totals, what: "averaging the losses") }
        _ = try batch.get()
        if totals[0] > 0 { throw ClusterError.peerFailed(what: "reading its share of the batch") }
        let ranks = Double(group.size), p = model.config.distillationWeight
        var global = losses
        global.reconstruction = totals[1] / ranks
        global.distillation = totals[2] / ranks
        global.total = (1 - p) * global.reconstruction + p * global.distillation
        global.teacherEntropy = totals[3] / ranks
        global.prototypeEntropy = totals[4..<(4 + k)].reduce(0.0) { entropy, sum in
            let mean = sum / Double(options.batchSize)
            return mean > 0 ? entropy - mean * log(mean) : entropy
        }
        return (global, totals[(4 + k)...].map(Float.init))
    }

    /// Replaces every rank's gradients by their mean over the ranks: packed into one buffer and
    /// summed in a few large messages.
    private func averageGradients(step: Int, waited: inout Double) throws {
        guard group.size > 1 else { return }
        var offset = 0
        for parameter in model.parameters {
            (gradients.pointer + offset).update(from: parameter.grad.pointer, count: parameter.count)
            offset += parameter.count
        }
        try timed(&waited) { try group.sum(gradients.pointer, count: offset, what: "averaging the gradients of step \(step)") }
        let scale = 1 / Float(group.size)
        offset = 0
        for parameter in model.parameters {
            let packed = gradients.pointer + offset, grad = parameter.grad.pointer
            for i in 0..<parameter.count { grad[i] = packed[i] * scale }
            offset += parameter.count
        }
    }

    private func timed<Value>(_ seconds: inout Double, _ body: () throws -> Value) rethrows -> Value {
        let started = Date()
        defer { seconds += Date().timeIntervalSince(started) }
        return try body()
    }

    // MARK: Checkpoints

    /// Writes both files of a checkpoint, then the pointer; keeps the previous checkpoint until
    /// the new one is complete.
    private func writeCheckpoint(step: Int) throws -> String {
        let name = String(format: "%@/step-%08d", RunFiles.checkpoints, step)
        let pointer = CheckpointPointer(step: step, model: name + ".safetensors", optimizer: name + ".optimizer.safetensors")
        try model.writeWeights(to: runDirectory + "/" + pointer.model, step: step)
        try optimiser.writeState(to: runDirectory + "/" + pointer.optimizer)
        let previous = try readPointer()
        try AtomicFile.write(JSONFile.encode(pointer), to: runDirectory + "/" + RunFiles.latest)
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
