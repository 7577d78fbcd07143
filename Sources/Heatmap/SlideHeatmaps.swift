import Foundation
import Imaging
import Predict
import Storage

/// The heatmap files of one slide: `heatmap-<class>.png` over the thumbnail, `grid-<class>.npy`
/// (NaN where there is no tissue) and, on request, `grid-<class>.png` alone.
public enum SlideHeatmaps {
    /// A class name made safe for a file name.
    public static func fileStem(_ className: String) -> String {
        String(className.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }

    /// Writes one set per class (all classes when `classes` is empty); `source` names the
    /// predictions in errors.
    public static func write(_ predictions: SlidePredictions, source: String, thumbnail: RGBImage, classes: [String],
                             style: HeatmapStyle, rawGrid: Bool, to directory: String) throws {
        for className in classes.isEmpty ? predictions.classes : classes {
            let scores = try predictions.scores(of: className, path: source)
            let grid = ScoreGrid(origins: predictions.origins, scores: scores, footprint: predictions.footprint, stride: predictions.stride,
                                 slideWidth: predictions.slideWidth, slideHeight: predictions.slideHeight)
            let stem = fileStem(className)
            try HeatmapRenderer.render(grid: grid, thumbnail: thumbnail, slideWidth: predictions.slideWidth,
                                       slideHeight: predictions.slideHeight, title: className, style: style)
                .write(to: "\(directory)/heatmap-\(stem).png")
            try AtomicFile.write(NPY.encode(grid.values, shape: [grid.rows, grid.columns]), to: "\(directory)/grid-\(stem).npy")
            if rawGrid {
                try AtomicFile.write(try HeatmapRenderer.rawGridPNG(grid: grid, cellPixels: 8, style: style), to: "\(directory)/grid-\(stem).png")
            }
        }
    }
}
