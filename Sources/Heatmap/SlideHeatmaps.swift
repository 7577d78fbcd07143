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

    /// Each class's file stem, unique among `classes`: names that sanitise alike (`a/b`, `a_b`)
    /// would overwrite each other's files, so later ones take `-2`, `-3`, … in class order.
    public static func fileStems(_ classes: [String]) -> [String: String] {
        var stems: [String: String] = [:], taken = Set<String>()
        let plain = classes.map(fileStem)
        for (className, stem) in zip(classes, plain) where stems[className] == nil {
            var candidate = stem, n = 1
            while taken.contains(candidate) || (candidate != stem && plain.contains(candidate)) { n += 1; candidate = "\(stem)-\(n)" }
            taken.insert(candidate)
            stems[className] = candidate
        }
        return stems
    }

    /// How classes whose names sanitise alike map to files ("'a/b' → a_b, 'a_b' → a_b-2"), empty
    /// when every class has a file stem of its own.
    public static func collisions(_ classes: [String]) -> String {
        let stems = fileStems(classes)
        let plain = Dictionary(grouping: classes, by: fileStem).filter { $0.value.count > 1 }
        return classes.filter { plain[fileStem($0)] != nil }.map { "'\($0)' → \(stems[$0] ?? "")" }.joined(separator: ", ")
    }

    /// Writes one set per class (all classes when `classes` is empty); `source` names the
    /// predictions in errors.
    public static func write(_ predictions: SlidePredictions, source: String, thumbnail: RGBImage, classes: [String],
                             style: HeatmapStyle, rawGrid: Bool, to directory: String) throws {
        let stems = fileStems(predictions.classes)
        for className in classes.isEmpty ? predictions.classes : classes {
            let scores = try predictions.scores(of: className, path: source)
            let grid = ScoreGrid(origins: predictions.origins, scores: scores, footprint: predictions.footprint, stride: predictions.stride,
                                 slideWidth: predictions.slideWidth, slideHeight: predictions.slideHeight)
            let stem = stems[className] ?? fileStem(className)
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
