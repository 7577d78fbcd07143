import Cluster
import Foundation
import Pipeline
import ViT

/// The published encoders this tool runs, with what a user needs to choose and fetch one.
struct EncodersCommand: DeclaredCommand {
    static let json = Option<Bool>("json", default: false, manifest: false, help: "print the table as JSON")
    static let spec = CommandSpec(
        name: "encoders", summary: "the published pathology encoders (--encoder NAME): size, tiles, weights, licence",
        synopsis: "[--json]",
        details: """
        Each preset is a timm ViT with the switches, transform and pooling of the published model and
        the tile settings TRIDENT uses for it. Weights are not shipped: download them from the source
        shown (most are gated: accept the terms on the model page while logged in) and pass the file
        with --weights. Any other timm ViT runs from a config .json in the same schema (--encoder FILE.json).
        """,
        options: [json.spec])

    func run(_ arguments: inout Arguments, group: ProcessGroup) throws -> Int32 {
        let values = try Self.spec.parseOptions(&arguments)
        if values[Self.json] {
            let rows = EncoderPresets.all.map { preset -> [String: Any] in
                ["name": preset.name, "model": preset.model, "features": preset.config.featureWidth, "parameters": preset.parameterCount,
                 "patch_size": preset.config.patchSize, "tile_size": preset.tileSize, "tile_mpp": preset.tileMPP,
                 "input": preset.config.transform.outputSize, "weights": preset.weights, "licence": preset.licence]
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
            return 0
        }
        print("name          model                                          features  parameters  tiles")
        for preset in EncoderPresets.all {
            print(preset.name.padding(toLength: 14, withPad: " ", startingAt: 0)
                  + preset.model.padding(toLength: 47, withPad: " ", startingAt: 0)
                  + String(format: "%8d  %8.1f M  %d px at %.1f µm/px (20×)", preset.config.featureWidth, Double(preset.parameterCount) / 1e6,
                           preset.tileSize, preset.tileMPP))
            print("              weights: \(preset.weights)")
            print("              licence: \(preset.licence)")
        }
        return 0
    }
}
