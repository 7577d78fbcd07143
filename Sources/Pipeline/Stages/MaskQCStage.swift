import Foundation
import Imaging
import SlideIO
import Tissue

/// The tissue-mask QC picture of one slide (see `wsi mask`).
struct MaskQCStage: Stage {
    static let kind = "mask-qc"
    static let scope = StageScope.perSlide
    static let summary = "thumbnail with the tissue outline, and the binary mask"
    static let parameters = [
        ParameterSpec("thumbnail_size", .int, default: .int(1024), help: "long side of the mask thumbnail"),
        ParameterSpec("threshold", .int, help: "fixed saturation threshold instead of Otsu"),
    ]
    static let inputs: [InputSpec] = []
    static let pictureName = "mask-qc.png"
    static let thumbnailName = "thumbnail.png"

    let config: TissueMaskConfig

    init(_ p: StageParameters) throws {
        var config = TissueMaskConfig()
        config.thumbnailLongSide = p.int("thumbnail_size") ?? 1024
        guard (64...16384).contains(config.thumbnailLongSide) else { throw StageError.failed("thumbnail_size must be in 64...16384") }
        if let t = p.int("threshold") {
            guard (0...255).contains(t) else { throw StageError.failed("threshold must be in 0...255") }
            config.threshold = .fixed(UInt8(t))
        }
        self.config = config
    }

    func run(_ context: StageContext) throws {
        let slide = try Slide(path: context.slide!)
        let (mask, thumbnail) = try TissueMask.compute(slide: slide, config: config)
        try QCPicture.render(thumbnail: thumbnail, mask: mask).write(to: context.output + "/" + Self.pictureName)
        try thumbnail.write(to: context.output + "/" + Self.thumbnailName)
        let bits = RGBImage(width: mask.width, height: mask.height, pixels: mask.bits.flatMap { $0 == 0 ? [0, 0, 0] : [255, 255, 255] as [UInt8] })
        try bits.write(to: context.output + "/mask.png")
    }
}
