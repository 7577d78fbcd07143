import Cluster
import Foundation
import Pipeline
import SlideIO

struct InfoCommand: DeclaredCommand {
    static let json = Option<Bool>("json", default: false, manifest: false, help: "machine-readable output")
    static let properties = Option<Bool>("properties", default: false, manifest: false, help: "also list every vendor property")
    static let spec = CommandSpec(name: "info", summary: "show a slide's vendor, levels, resolution, associated images and properties",
                                  synopsis: "SLIDE [options]", details: "Prints what OpenSlide knows about SLIDE.",
                                  options: [json.spec, properties.spec])

    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        let (values, paths) = try Self.spec.parse(&arguments)
        let json = values[Self.json], listProperties = values[Self.properties]
        guard paths.count == 1 else { throw UsageError("expected exactly one SLIDE") }
        let slide = try Slide(path: paths[0])
        if json {
            var object: [String: Any] = [
                "path": slide.path, "vendor": slide.vendor,
                "levels": slide.levels.map { ["width": $0.width, "height": $0.height, "downsample": $0.downsample] },
                "associated_images": slide.associatedImageNames,
            ]
            if let mpp = slide.micronsPerPixel { object["mpp"] = ["x": mpp.x, "y": mpp.y, "source": slide.micronsPerPixelSource ?? ""] }
            if let power = slide.objectivePower { object["objective_power"] = power }
            if listProperties { object["properties"] = slide.properties }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return 0
        }
        print("file:       \(slide.path)")
        print("vendor:     \(slide.vendor)")
        print("dimensions: \(slide.dimensions.width) x \(slide.dimensions.height)")
        if let mpp = slide.micronsPerPixel {
            print("mpp:        \(mpp.x) x \(mpp.y) µm/px (from \(slide.micronsPerPixelSource == "tiff-resolution" ? "the TIFF resolution tags" : "the scanner's metadata"))")
        } else {
            print("mpp:        not recorded")
        }
        print("objective:  " + (slide.objectivePower.map { "\($0)x" } ?? "not recorded"))
        print("levels:")
        for level in slide.levels {
            print("  [\(level.index)] \(level.width) x \(level.height)  downsample \(String(format: "%.4f", level.downsample))")
        }
        print("associated: " + (slide.associatedImageNames.isEmpty ? "none" : slide.associatedImageNames.joined(separator: ", ")))
        if listProperties {
            print("properties:")
            for (key, value) in slide.properties.sorted(by: { $0.key < $1.key }) { print("  \(key) = \(value)") }
        }
        return 0
    }
}
