import Annotations
import Foundation
import Imaging
import Predict
import SlideIO
import Storage
import Tiling
import Tissue
import Results

/// What the pipeline found on a slide, as objects QuPath imports over the slide.
struct ExportGeoJSONStage: Stage {
    static let kind = "export-geojson"
    static let scope = StageScope.perSlide
    static let summary = "tissue outline and tiles (with their scores) as QuPath GeoJSON objects in level-0 pixels"
    static let tissue = Option<Bool>("tissue", default: true, help: "export the tissue outline (with holes) as an annotation")
    static let objectType = Option<QuPathObjectType>("object_type", default: .tile, help: "QuPath object type of the tiles")
    static let parameters = [tissue.spec, objectType.spec]
    static let inputs = [
        InputSpec("tiles", perSlide: true, reads: ["tile"], help: "the tile stage's folder"),
        InputSpec("predictions", required: false, perSlide: true, reads: ["predict", "predict-mil"],
                  help: "the predict or predict-mil stage's folder: class probabilities or attention become measurements"),
    ]
    static let outputs = [
        OutputSpec("<slide>.geojson", "FeatureCollection: the tissue outline (class Tissue), then one object per kept tile classified by its "
                   + "predicted class (or its annotation label), measurements: tissue fraction, p(<class>), attention"),
    ]

    let tissue: Bool
    let objectType: QuPathObjectType

    init(_ p: StageParameters) throws {
        tissue = p[Self.tissue]
        objectType = p[Self.objectType]
    }

    func run(_ context: StageContext) throws -> String {
        let slidePath = try context.requireSlide()
        let folder = TilingFolder(try context.input("tiles")[0])
        let summary = try folder.summary()
        let origins = try folder.origins()
        let reader = try HDF5Reader(path: folder.path + "/" + TilingFiles.coordinatesHDF5)
        let tissueFractions = (try? reader.floatMatrix("tissue_fraction").values) ?? []
        let labels = try folder.tileLabels()

        var scores: (classes: [String], values: [Float], raw: [Float]?)?
        if var directory = context.inputs["predictions"]?.first {
            if !FileManager.default.fileExists(atPath: directory + "/" + PredictionFiles.hdf5) { directory += "/" + SlideDiscovery.stem(of: slidePath) }
            let predictions = try SlidePredictions(directory: directory)
            guard predictions.origins.elementsEqual(origins, by: { $0.x == $1.x && $0.y == $1.y }) else {
                throw StageError.failed("\(directory): the predictions list other tiles than \(folder.path); predict again from these tiles")
            }
            let raw = try? HDF5Reader(path: directory + "/" + PredictionFiles.hdf5).floatMatrix("attention_raw").values
            scores = (predictions.classes, predictions.probabilities, raw)
        }

        var objects: [ExportedObject] = []
        if tissue {
            let slide = try Slide(path: slidePath)
            let (mask, _) = try TissueMask.compute(slide: slide, micronsPerPixel: summary.micronsPerPixel, config: TissueMaskConfig())
            let outline = mask.contours()
            if !outline.isEmpty {
                objects.append(ExportedObject(polygons: outline, objectType: .annotation, className: "Tissue", colour: ClassColour(0, 160, 0), name: "tissue mask"))
            }
        }
        let footprint = Double(summary.footprintLevel0)
        let colours = Self.classColours(classes: scores?.classes ?? labels?.classes ?? [], tiling: folder)
        for (i, origin) in origins.enumerated() {
            var measurements: [(name: String, value: Double)] = []
            if tissueFractions.indices.contains(i) { measurements.append(("Tissue fraction", Double(tissueFractions[i]))) }
            var className = labels?.labels[i]
            if let scores {
                let c = scores.classes.count
                let row = Array(scores.values[(i * c)..<((i + 1) * c)])
                if scores.classes == ["attention"] {
                    measurements.append(("Attention percentile", Double(row[0])))
                    if let raw = scores.raw, raw.indices.contains(i) { measurements.append(("Attention", Double(raw[i]))) }
                } else {
                    measurements += zip(scores.classes, row).map { ("p(\($0))", Double($1)) }
                    className = row.indices.max { row[$0] < row[$1] }.map { scores.classes[$0] }
                }
            }
            if let label = labels?.labels[i] { measurements.append(("Annotated " + label, 1)) }
            objects.append(ExportedObject(polygons: ExportedObject.rectangle(x: Double(origin.x), y: Double(origin.y), width: footprint, height: footprint),
                                          objectType: objectType, className: className, colour: className.flatMap { colours[$0] },
                                          measurements: measurements))
        }
        let name = SlideDiscovery.stem(of: slidePath) + ".geojson"
        try AtomicFile.write(try GeoJSONWriter.encode(objects, source: SlideDiscovery.stem(of: slidePath)), to: context.output + "/" + name)
        return "\(origins.count) tiles" + (tissue ? " and the tissue outline" : "") + " → \(name)"
    }

    /// QuPath shows classes in their colours: those of the annotations the tiles were labelled
    /// from when they give one, else the class map's (so the PNG and QuPath agree).
    static func classColours(classes: [String], tiling: TilingFolder) -> [String: ClassColour] {
        var colours: [String: ClassColour] = [:]
        for (k, name) in classes.enumerated() {
            let (r, g, b) = ClassColours.colour(k)
            colours[name] = ClassColour(r, g, b)
        }
        if let reader = try? HDF5Reader(path: tiling.path + "/" + TilingFiles.coordinatesHDF5),
           case let .string(path)? = try? reader.attribute("annotations", of: "class_fractions"), !path.isEmpty,
           let drawn = try? AnnotationSet.read(path: path) {
            colours.merge(drawn.classColours) { _, drawn in drawn }
        }
        return colours
    }
}
