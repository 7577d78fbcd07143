import Foundation
import Imaging
import Results
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

    /// Writes one set per class (all classes when `classes` is empty); `source` is the
    /// predictions file, named in errors.
    public static func write(_ predictions: SlidePredictions, source: String, thumbnail: RGBImage, classes: [String], scale: HeatmapScale,
                             verdict: (String) -> String?, style: HeatmapStyle, rawGrid: Bool, to directory: String) throws {
        let stems = fileStems(predictions.classes)
        var style = style
        for className in classes.isEmpty ? predictions.classes : classes {
            let layer = try HeatmapLayer(predictions, className: className, scale: scale, source: source)
            style.range = layer.range
            let grid = ScoreGrid(origins: predictions.origins, scores: layer.values, footprint: predictions.footprint, stride: predictions.stride,
                                 slideWidth: predictions.slideWidth, slideHeight: predictions.slideHeight)
            let stem = stems[className] ?? fileStem(className)
            let caption = HeatmapCaption(slide: URL(fileURLWithPath: predictions.slide).deletingPathExtension().lastPathComponent,
                                         measure: layer.measure, verdict: verdict(className))
            try HeatmapRenderer.render(grid: grid, thumbnail: thumbnail, slideWidth: predictions.slideWidth,
                                       slideHeight: predictions.slideHeight, caption: caption, style: style)
                .write(to: "\(directory)/heatmap-\(stem).png")
            try AtomicFile.write(NPY.encode(grid.values, shape: [grid.rows, grid.columns]), to: "\(directory)/grid-\(stem).npy")
            if rawGrid {
                try AtomicFile.write(try HeatmapRenderer.rawGridPNG(grid: grid, cellPixels: 8, style: style), to: "\(directory)/grid-\(stem).png")
            }
        }
    }
}

/// What a heatmap's colours measure.
public enum HeatmapScale: String, CaseIterable, Sendable {
    /// Probabilities as they are; attention as its percentile within the slide.
    case auto
    /// Each score's percentile within its slide: the slide's top tiles glow whatever their score.
    case percentile
    /// Probabilities from 0 to 1; attention scaled by the cohort's range, so a negative slide stays cool.
    case raw
}

/// One class's scores on the chosen scale, with the range the colours span and the words the
/// colour bar carries.
public struct HeatmapLayer {
    public var values: [Float]
    public var range: ClosedRange<Float>
    public var measure: String

    public init(_ predictions: SlidePredictions, className: String, scale: HeatmapScale, source: String) throws {
        let scores = try predictions.scores(of: className, path: source)
        range = 0...1
        if predictions.classes == ["attention"] {
            // predict-mil stores the percentile within the slide as the score, the cohort scale beside it.
            guard scale == .raw else { (values, measure) = (scores, "ATTENTION: PERCENTILE WITHIN THIS SLIDE"); return }
            let cohort = try? HDF5Reader(path: source).floatMatrix(PredictionFiles.cohortAttention).values
            guard let cohort, cohort.count == scores.count else {
                throw StorageError.malformed(path: source, reason: "no cohort-scaled attention (predict-mil of an older version): run predict-mil again")
            }
            (values, measure) = (cohort, "ATTENTION: SCALED ACROSS THE COHORT")
        } else if scale == .percentile {
            (values, measure) = (percentileRanks(scores), "P(\(className)): PERCENTILE WITHIN THIS SLIDE")
        } else {
            (values, measure) = (scores, "P(\(className)), 0 TO 1")
        }
    }
}
