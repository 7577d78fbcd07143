import Foundation
import Heatmap
import Imaging
import NN
import Pipeline

/// `wsi bench tiff`: writing a full-resolution heatmap TIFF of a large slide (a random score
/// grid: the pixels cost the same whatever the scores), for time and peak memory.
enum TIFFBench {
    static let width = Option<Int>("width", 256...1_000_000, default: 13329, manifest: false, help: "slide width, level-0 pixels")
    static let height = Option<Int>("height", 256...1_000_000, default: 10701, manifest: false, help: "slide height")
    static let downsample = Option<Double>("downsample", 1...4096, default: 1, manifest: false, help: "level-0 pixels per TIFF pixel")
    static let compression = Option<TIFFCompression>("compression", default: .deflate, manifest: false,
                                                     help: "RGBA needs deflate; jpeg writes the colours over white")
    static let runs = Option<Int>("runs", 1...100, default: 3, manifest: false, help: "repetitions")
    static let spec = CommandSpec(name: "bench tiff", summary: "pyramidal heatmap TIFF writing", synopsis: "[options]",
                                  details: """
                                  Writes a full-resolution RGBA heatmap (or, with jpeg, colours over white) of a random score
                                  grid on a slide of the given size as a pyramidal TIFF, and reports time and memory.
                                  """,
                                  options: [width.spec, height.spec, downsample.spec, compression.spec, runs.spec])

    static func run(_ arguments: inout Arguments) throws -> Int32 {
        let (values, what) = try spec.parse(&arguments)
        guard what == ["tiff"] else { throw UsageError("expected 'bench tiff'") }
        let width = values[Self.width], height = values[Self.height]
        let downsample = values[Self.downsample]
        let compression = values[Self.compression]
        let stride = 256.0
        let columns = Int((Double(width) / stride).rounded(.up)), rows = Int((Double(height) / stride).rounded(.up))
        var generator = SeededGenerator(seed: 3)
        // Two thirds of the cells on tissue, as on a typical section.
        let grid = ScoreGrid(columns: columns, rows: rows, cellSize: stride,
                             values: (0..<(columns * rows)).map { _ in generator.uniform() < 0.67 ? generator.uniform() : .nan })
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wsi-bench-\(getpid()).tif").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var seconds: [Double] = []
        var levels: [(width: Int, height: Int)] = []
        for _ in 0..<values[Self.runs] {
            let start = Date()
            levels = try HeatmapTIFF.write(grid: grid, style: HeatmapStyle(), slideWidth: width, slideHeight: height, downsample: downsample,
                                           mode: compression == .jpeg ? .overSlide : .rgba, compression: compression, micronsPerPixel: 0.25,
                                           title: "bench", to: path, background: nil)
            seconds.append(Date().timeIntervalSince(start))
        }
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.doubleValue ?? 0
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(String(format: "heatmap TIFF %d×%d (%@, %d levels, %.1f MiB): median %.2f s (%.1f Mpx/s over all levels), peak resident memory %.1f MiB",
                     levels.first?.width ?? 0, levels.first?.height ?? 0, compression.rawValue, levels.count, size / 1_048_576,
                     BenchCommand.median(seconds), Double(levels.map { $0.width * $0.height }.reduce(0, +)) / BenchCommand.median(seconds) / 1e6,
                     Double(usage.ru_maxrss) / 1024))
        return 0
    }
}
