import Foundation
import Storage
import Tiling

/// The tiling in CLAM's folder layout, for CLAM's `extract_features_fp.py` (and TRIDENT, which
/// reads the same files): `patches/<slide>.h5` and the slide list CLAM's scripts take.
struct ExportCLAMStage: Stage {
    static let kind = "export-clam"
    static let scope = StageScope.global
    static let summary = "the tiles' coordinates as CLAM's patches/<slide>.h5 folder and process list"
    static let parameters: [ParameterSpec] = []
    static let inputs = [InputSpec("tiles", perSlide: true, reads: ["tile"], help: "the tile stage's folder")]
    static let listName = "process_list_autogen.csv"
    static let outputs = [
        OutputSpec("patches/<slide>.h5", "coords int64 [N, 2] in level-0 pixels with CLAM's and TRIDENT's attributes, patch_size the size read at patch_level"),
        OutputSpec(listName, "slide_id (the slide's file name), status: the list extract_features_fp.py --csv_path reads"),
    ]

    init(_ p: StageParameters) throws {}

    func run(_ context: StageContext) throws -> String {
        try FileManager.default.createDirectory(atPath: context.output + "/patches", withIntermediateDirectories: true)
        var rows = CSV.row(["slide_id", "status"])
        let folders = try context.input("tiles")
        for folder in folders {
            let tiling = TilingFolder(folder)
            let summary = try tiling.summary()
            let stem = URL(fileURLWithPath: folder).lastPathComponent
            try Self.writeForCLAM(from: folder + "/" + TilingFiles.coordinatesHDF5, summary: summary, to: context.output + "/patches/" + stem + ".h5")
            rows += CSV.row([URL(fileURLWithPath: summary.slide).lastPathComponent, "processed"])
        }
        try AtomicFile.write(Data(rows.utf8), to: context.output + "/" + Self.listName)
        return "\(folders.count) slides in CLAM's layout"
    }

    /// coords.h5 with `patch_size` the pixels read at `patch_level`, which CLAM reads and then
    /// resizes itself (`--target_patch_size`); TRIDENT's magnification follows, so it reads the
    /// same region. They differ from coords.h5's only when tiles were resampled (an mpp no
    /// pyramid level has).
    static func writeForCLAM(from source: String, summary: TilingSummary, to path: String) throws {
        let reader = try HDF5Reader(path: source)
        let coordinates = try reader.int64Matrix("coords")
        var attributes: [String: HDF5Attribute] = [:]
        for name in TilingFiles.coordinateAttributes { attributes[name] = try? reader.attribute(name, of: "coords") }
        attributes["patch_size"] = .int(Int64(summary.readSize))
        if case let .int(level0)? = attributes["level0_magnification"] {
            attributes["target_magnification"] = .int(Int64((Double(level0) * Double(summary.readSize) / Double(summary.footprintLevel0)).rounded()))
        }
        try AtomicFile.produce(path) { temporary in
            let writer = try HDF5Writer(path: temporary)
            try writer.write("coords", coordinates, attributes: attributes)
            try writer.close()
        }
    }
}
