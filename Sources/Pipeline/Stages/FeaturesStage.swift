import Foundation
import NN
import SDMAE
import Storage
import Tiling
import ViT

/// Encoder features of every kept tile of a slide: the bag a slide-level (MIL) model reads.
struct FeaturesStage: Stage {
    static let kind = "features"
    static let scope = StageScope.perSlide
    static let summary = "encoder features of every kept tile, as an HDF5 bag in the CLAM/TRIDENT layout"
    static let parameters = EncoderInference.parameters
    static let inputs = [
        InputSpec("tiles", perSlide: true, reads: ["tile"], help: "the tile stage's folder"),
        EncoderInference.checkpointInput,
    ]
    static let fileName = "features.h5"
    static let outputs = [
        OutputSpec(fileName, "features float32 [N, D] (attributes encoder, encoder_width, name) and coords int64 [N, 2] (the tiling's attributes)"),
    ]

    let batch: Int
    let precision: Precision
    let choice: EncoderChoice
    private let cache = LoadedOnce<any PatchEncoder>()
    private let notices = OnceNotices()

    init(_ p: StageParameters) throws {
        batch = p[EncoderInference.batch]
        precision = p[EncoderInference.precision].resolved
        choice = try EncoderInference.choice(p)
    }

    func run(_ context: StageContext) throws -> String {
        let files = try EncoderInference.files(choice, context)
        let folder = TilingFolder(try context.input("tiles")[0])
        let slide = try context.requireSlide()
        let origins = try folder.origins()
        let dataset = try folder.patches(slidePath: slide)
        return try cache.with(files: files, load: { try EncoderInference.load(choice, files: files, precision: precision) }) { encoder in
            notices.say(EncoderInference.tileNotice(encoder, tiling: try folder.summary()))
            var extractor = FeatureExtractor(encoder: encoder)
            extractor.batchSize = batch
            extractor.showProgress = context.showProgress
            let features = try extractor.run(dataset)
            if let bad = features.firstIndex(where: { !$0.isFinite }) {
                throw StageError.failed("\(files[0]): the features of tile \(bad / encoder.featureWidth) are not numbers; the weights hold NaN")
            }
            let coordinatesPath = folder.path + "/" + TilingFiles.coordinatesHDF5
            let reader = try HDF5Reader(path: coordinatesPath)
            var attributes: [String: HDF5Attribute] = [:]
            for name in TilingFiles.coordinateAttributes { attributes[name] = try? reader.attribute(name, of: "coords") }
            let width = encoder.featureWidth
            let name = encoder.encoderName + ":" + URL(fileURLWithPath: files[0]).lastPathComponent
            let stem = URL(fileURLWithPath: slide).deletingPathExtension().lastPathComponent
            try AtomicFile.produce(context.output + "/" + Self.fileName) { temporary in
                let writer = try HDF5Writer(path: temporary)
                try writer.write("features", Matrix(rows: origins.count, columns: width, values: features),
                                 attributes: ["encoder": .string(name), "encoder_width": .int(Int64(width)), "name": .string(stem)])
                try writer.write("coords", Matrix(rows: origins.count, columns: 2, values: origins.flatMap { [Int64($0.x), Int64($0.y)] }),
                                 attributes: attributes)
                try writer.close()
            }
            return "\(origins.count) tiles × \(width) features (\(encoder.encoderName))"
        }
    }

    /// Per slide: how many tiles, how wide, and which encoder made them.
    static func report(_ location: StageOutputLocation) -> ReportPart {
        // The coordinates give the count without reading every feature.
        guard location.slide != nil, let reader = try? HDF5Reader(path: location.path + "/" + fileName),
              let coordinates = try? reader.int64Matrix("coords"),
              case let .string(encoder)? = try? reader.attribute("encoder", of: "features") else { return ReportPart() }
        let width = (try? reader.attribute("encoder_width", of: "features")).flatMap { if case let .int(n) = $0 { return String(n) } else { return nil } } ?? "?"
        return ReportPart(html: "<p>Features (\(escapeHTML(location.stageID))): \(coordinates.rows) tiles × \(width) values "
                          + "from <b>\(escapeHTML(encoder))</b>.</p>")
    }
}
