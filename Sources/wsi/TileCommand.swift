import Console
import Foundation
import SlideIO
import Tiling

enum TileCommand: Command {
    static let name = "tile"
    static let summary = "cut tissue patches from slides (CSV + HDF5 coordinates, patches, QC picture)"
    static let usage = """
    Usage: wsi tile SLIDE_OR_DIR --out DIR [--mpp 0.5 | --magnification 20 | --level N] [options]

    Writes, per slide, DIR/<slide name>/: tiles.csv and coords.h5 (CLAM layout, level-0 coordinates),
    rejected.csv, qc.png, tiling.json, and the patches in the chosen format.

    Grid (one of; default --mpp 0.5, or --level 0 when the slide records no resolution):
      --mpp X                 target microns per pixel of the patches
      --magnification M       target objective magnification (e.g. 20, 10)
      --level N               a pyramid level as it is
    Options:
      --size PX               patch side in pixels (default 256)
      --overlap PX            overlap between neighbouring patches (default 0)
      --tissue-threshold F    minimum tissue fraction of a patch, 0...1 (default 0.5)
      --format F              jpeg | png | shard | none (default jpeg)
      --jpeg-quality Q        1...100 (default 90)
      --threads N             worker threads (default: all cores)
      --assume-mpp X          microns per pixel for slides that record none
      --no-colour-filter      keep patches that look white, black or inked
      --quiet                 no progress bar
    """

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        guard let out = try arguments.string("out") else { throw UsageError("--out DIR is required") }
        let options = try tilingOptions(&arguments)
        let inputs = try arguments.positionals()
        guard inputs.count == 1 else { throw UsageError("expected one SLIDE_OR_DIR") }
        let slides = try SlideDiscovery.slides(at: inputs[0])
        guard !slides.isEmpty else { throw UsageError("no slides found in \(inputs[0])") }
        var failures = 0
        for path in slides {
            do {
                let summary = try TileExtractor(options: options).run(slidePath: path, outputDirectory: out + "/" + SlideDiscovery.stem(of: path))
                print("\(path): \(summary.keptTiles) patches kept of \(summary.tissueTiles) on tissue (\(summary.gridTiles) in grid), "
                      + "level \(summary.readLevel), \(String(format: "%.1f", summary.seconds)) s")
            } catch {
                failures += 1
                printError("failed: \(error)")
            }
        }
        if slides.count > 1 { print("\(slides.count - failures) of \(slides.count) slides tiled, \(failures) failed") }
        return failures == 0 ? 0 : 1
    }

    /// Grid and filter options shared by `tile` and `bench tile`.
    static func tilingOptions(_ arguments: inout Arguments, defaultFormat: PatchFormat = .jpeg) throws -> TilingOptions {
        let mpp = try arguments.double("mpp", range: 0.01...1000)
        let magnification = try arguments.double("magnification", range: 0.1...400)
        let level = try arguments.int("level", range: 0...64)
        guard [mpp != nil, magnification != nil, level != nil].filter({ $0 }).count <= 1 else {
            throw UsageError("give only one of --mpp, --magnification, --level")
        }
        let resolution: TileResolution
        if let mpp { resolution = .micronsPerPixel(mpp) }
        else if let magnification { resolution = .magnification(magnification) }
        else if let level { resolution = .level(level) }
        else { resolution = .micronsPerPixel(0.5) }
        let size = try arguments.int("size", range: 8...8192) ?? 256
        let overlap = try arguments.int("overlap", range: 0...8191) ?? 0
        guard overlap < size else { throw UsageError("--overlap must be smaller than --size") }
        var options = TilingOptions(grid: TileGridSpec(resolution: resolution, size: size, overlap: overlap))
        options.defaultsToLevelZeroWithoutResolution = mpp == nil && magnification == nil && level == nil
        options.tissueThreshold = try arguments.double("tissue-threshold", range: 0...1) ?? options.tissueThreshold
        options.format = try arguments.choice("format", PatchFormat.self) ?? defaultFormat
        options.jpegQuality = try arguments.int("jpeg-quality", range: 1...100) ?? options.jpegQuality
        options.threads = try arguments.int("threads", range: 1...256) ?? options.threads
        options.assumedMicronsPerPixel = try arguments.double("assume-mpp", range: 0.01...1000)
        options.quality.enabled = !arguments.flag("no-colour-filter")
        options.showProgress = !arguments.flag("quiet")
        return options
    }
}
