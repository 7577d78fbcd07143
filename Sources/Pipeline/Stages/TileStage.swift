import Foundation
import Tiling

/// Tissue tiles of one slide (see `wsi tile`).
struct TileStage: Stage {
    static let kind = "tile"
    static let scope = StageScope.perSlide
    static let summary = "cut tissue patches; coordinates as CSV + HDF5, patches, QC picture"
    static let parameters = [
        ParameterSpec("mpp", .double, help: "target microns per pixel (default 0.5; level 0 when the slide has no mpp)"),
        ParameterSpec("magnification", .double, help: "target magnification instead of mpp"),
        ParameterSpec("level", .int, help: "pyramid level instead of mpp"),
        ParameterSpec("size", .int, default: .int(256), help: "patch side in pixels"),
        ParameterSpec("overlap", .int, default: .int(0), help: "overlap in pixels"),
        ParameterSpec("tissue_threshold", .double, default: .double(0.5), help: "minimum tissue fraction"),
        ParameterSpec("format", .string, default: .string("shard"), help: "jpeg | png | shard | none"),
        ParameterSpec("assume_mpp", .double, help: "mpp for slides that record none"),
    ]
    static let inputs: [InputSpec] = []

    let options: TilingOptions

    init(_ p: StageParameters) throws {
        let chosen = [p.double("mpp"), p.double("magnification"), p.int("level").map(Double.init)].compactMap { $0 }
        guard chosen.count <= 1 else { throw StageError.failed("give only one of mpp, magnification, level") }
        let resolution: TileResolution
        if let mpp = p.double("mpp") { resolution = .micronsPerPixel(mpp) }
        else if let magnification = p.double("magnification") { resolution = .magnification(magnification) }
        else if let level = p.int("level") { resolution = .level(level) }
        else { resolution = .micronsPerPixel(0.5) }
        let size = p.int("size") ?? 256, overlap = p.int("overlap") ?? 0
        guard size >= 8, overlap >= 0, overlap < size else { throw StageError.failed("size must be ≥ 8 and overlap in 0..<size") }
        var options = TilingOptions(grid: TileGridSpec(resolution: resolution, size: size, overlap: overlap))
        options.defaultsToLevelZeroWithoutResolution = chosen.isEmpty
        options.tissueThreshold = p.double("tissue_threshold") ?? 0.5
        guard let format = PatchFormat(rawValue: p.string("format") ?? "shard") else {
            throw StageError.failed("format must be one of \(PatchFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        options.format = format
        options.assumedMicronsPerPixel = p.double("assume_mpp")
        self.options = options
    }

    func run(_ context: StageContext) throws {
        var options = self.options
        options.showProgress = context.showProgress
        try TileExtractor(options: options).run(slidePath: context.slide!, outputDirectory: context.output)
    }
}
