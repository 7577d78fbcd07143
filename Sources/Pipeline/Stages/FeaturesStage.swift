import Foundation
import NN
import SDMAE
import Storage
import Tiling

/// Encoder features of every kept tile of a slide: the bag a slide-level (MIL) model reads.
struct FeaturesStage: Stage {
    static let kind = "features"
    static let scope = StageScope.perSlide
    static let summary = "encoder features of every kept tile, as an HDF5 bag in the CLAM/TRIDENT layout"
    static let parameters = EncoderInference.parameters
    static let inputs = [
        InputSpec("tiles", perSlide: true, help: "the tile stage's folder"),
        InputSpec("checkpoint", help: "the pretrain stage's folder or an SD-MAE checkpoint file"),
    ]
    static let fileName = "features.h5"
    static let outputs = [
        OutputSpec(fileName, "features float32 [N, D] (attributes encoder, name) and coords int64 [N, 2] (the tiling's attributes)"),
    ]
    /// The tiling attributes of `coords` carried over, so CLAM and TRIDENT readers find what they expect.
    static let coordinateAttributes = ["patch_size", "patch_level", "patch_size_level0", "level_dim", "downsample", "name",
                                       "mpp_level0", "target_mpp"]

    let batch: Int
    let precision: Precision
    private let cache = LoadedOnce<SDMAEModel>()

    init(_ p: StageParameters) throws {
        batch = p.int("batch") ?? 64
        precision = EncoderInference.precision(p)
    }

    func run(_ context: StageContext) throws -> String {
        let checkpoint = file(try context.input("checkpoint")[0], named: RunFiles.finalModel)
        let folder = TilingFolder(try context.input("tiles")[0])
        let slide = try context.requireSlide()
        let origins = try folder.origins()
        let dataset = try folder.patches(slidePath: slide)
        return try cache.with(files: [checkpoint], load: { try EncoderInference.load(checkpoint, precision: precision) }) { model in
            var extractor = FeatureExtractor(model: model)
            extractor.batchSize = batch
            extractor.showProgress = context.showProgress
            let features = try extractor.run(dataset)
            if let bad = features.firstIndex(where: { !$0.isFinite }) {
                throw StageError.failed("\(checkpoint): the features of tile \(bad / model.config.width) are not numbers; the checkpoint holds NaN")
            }
            let coordinatesPath = folder.path + "/" + TilingFiles.coordinatesHDF5
            let reader = try HDF5Reader(path: coordinatesPath)
            var attributes: [String: HDF5Attribute] = [:]
            for name in Self.coordinateAttributes { attributes[name] = try? reader.attribute(name, of: "coords") }
            let encoder = "sdmae-\(model.config.imageSize)px-\(model.config.width)d:" + URL(fileURLWithPath: checkpoint).lastPathComponent
            let stem = URL(fileURLWithPath: slide).deletingPathExtension().lastPathComponent
            try AtomicFile.produce(context.output + "/" + Self.fileName) { temporary in
                let writer = try HDF5Writer(path: temporary)
                try writer.write("features", Matrix(rows: origins.count, columns: model.config.width, values: features),
                                 attributes: ["encoder": .string(encoder), "name": .string(stem)])
                try writer.write("coords", Matrix(rows: origins.count, columns: 2, values: origins.flatMap { [Int64($0.x), Int64($0.y)] }),
                                 attributes: attributes)
                try writer.close()
            }
            return "\(origins.count) tiles × \(model.config.width) features"
        }
    }
}
