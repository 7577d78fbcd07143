import Foundation
import Predict
import SDMAE
import SlideIO
import Tiling
import Storage

/// Linear probe on frozen encoder features of labelled patches.
struct TrainClassifierStage: Stage {
    static let kind = "train-classifier"
    static let scope = StageScope.global
    static let summary = "linear probe on frozen encoder features of labelled patches or of tiles labelled by annotations"
    static let labelled = Option<String?>("labelled", .path, placeholder: "DIR",
                                          help: LabelledPatchOptions.labelled.spec.help + " (or give the tiles input: tiles labelled by annotations)")
    static let validationFraction = Option<Double>("validation_fraction", 0.01...0.9, default: 0.2,
                                                   help: "held-out share of every class's sources (whole groups are held out)")
    static let parameters = [labelled.spec] + LabelledPatchOptions.sharedParameters + [validationFraction.spec] + EncoderInference.choiceParameters
    static let inputs = [
        EncoderInference.checkpointInput,
        InputSpec("tiles", required: false, perSlide: true, reads: ["tile"],
                  help: "the tile stage's folder, tiled with annotations: its labelled tiles train the probe, held out by slide "
                  + "(by blocks of 8 × 8 tiles when one slide is annotated)"),
    ]
    static let classifierName = "classifier.safetensors"
    static let metricsName = "metrics.json"
    static let outputs = [
        OutputSpec(classifierName, "standardisation and softmax weights, class names in the metadata"),
        OutputSpec(metricsName, "held-out accuracy, balanced accuracy, precision, recall, confusion; linear probe and kNN (k=20), "
                   + "and the probe on a random encoder and on the colour histogram (baselines)"),
    ]

    let labelled: String?
    let rule: GroupRule
    let validationFraction: Double
    let crops: Bool
    let settings: LinearProbe.TrainingSettings
    let choice: EncoderChoice

    init(_ p: StageParameters) throws {
        choice = try EncoderInference.choice(p)
        labelled = p[Self.labelled]
        rule = try LabelledPatchOptions.groupRule(p)
        crops = p[LabelledPatchOptions.crops]
        validationFraction = p[Self.validationFraction]
        settings = LabelledPatchOptions.probe(p)
    }

    func run(_ context: StageContext) throws -> String {
        let encoder = try EncoderInference.load(choice, files: try EncoderInference.files(choice, context), precision: .fp32)
        let patches: LabelledPatches
        let groups: [String]
        if let tiles = context.inputs["tiles"], !tiles.isEmpty {
            guard labelled == nil else { throw StageError.invalid("give labelled or the tiles input, not both") }
            let slides = Dictionary(context.slides.map { (SlideDiscovery.stem(of: $0), $0) }) { first, _ in first }
            // A slide outside this run (a command-line run has none) is found where it was tiled from.
            patches = try LabelledPatches(tilings: tiles.map { folder in
                (folder: folder, slide: slides[URL(fileURLWithPath: folder).lastPathComponent] ?? (try? TilingFolder(folder).summary().slide) ?? "")
            })
            groups = patches.sources ?? []
        } else {
            guard let labelled else { throw StageError.invalid("labelled is required (or the tiles input of annotated slides)") }
            patches = try LabelledPatches(root: labelled)
            groups = try patches.groups(by: rule)
        }
        let result = try ClassifierTraining.run(encoder: encoder, patches: patches, groups: groups, crops: crops && patches.sources == nil,
                                                validationFraction: validationFraction,
                                                seed: settings.seed, settings: settings, showProgress: context.showProgress)
        try result.probe.write(to: context.output + "/" + Self.classifierName, metadata: ["encoder_width": String(encoder.featureWidth), "encoder": encoder.encoderName])
        try AtomicFile.write(try result.reportJSON(), to: context.output + "/" + Self.metricsName)
        return "\(patches.dataset.count) patches in \(patches.classes.count) classes; held out: linear probe balanced accuracy "
            + String(format: "%.3f, kNN %.3f (the probe on a random encoder %.3f, on the colour histogram %.3f)", result.linear.balancedAccuracy,
                     result.knn.balancedAccuracy, result.randomEncoder.balancedAccuracy, result.colourHistogram.balancedAccuracy)
    }

    static func report(_ location: StageOutputLocation) -> ReportPart {
        guard location.slide == nil,
              let data = FileManager.default.contents(atPath: location.path + "/" + metricsName),
              let metrics = try? JSONDecoder().decode(ClassifierMetrics.self, from: data) else { return ReportPart() }
        var html = "<h2>Classifier: \(escapeHTML(location.stageID))</h2><p>\(metrics.trainingSamples) training patches, "
            + "\(metrics.linearProbe.samples) held out.</p><table><tr><th>evaluation</th><th>accuracy</th><th>balanced accuracy</th>"
            + metrics.linearProbe.classes.map { "<th>\(escapeHTML($0)) precision / recall</th>" }.joined() + "</tr>"
        let baselines = [("linear probe, random encoder (baseline)", metrics.randomEncoderProbe),
                         ("linear probe, colour histogram (baseline)", metrics.colourHistogramProbe)].compactMap { name, report in report.map { (name, $0) } }
        for (name, report) in [("linear probe", metrics.linearProbe), ("kNN (k=20, cosine)", metrics.knn20Cosine)] + baselines {
            html += "<tr><td>\(name)</td>" + String(format: "<td>%.3f</td><td>%.3f</td>", report.accuracy, report.balancedAccuracy)
            html += zip(report.precision, report.recall).map { String(format: "<td>%.3f / %.3f</td>", $0, $1) }.joined() + "</tr>"
        }
        return ReportPart(html: html + "</table>")
    }
}
