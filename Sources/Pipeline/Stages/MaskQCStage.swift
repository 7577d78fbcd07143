import Foundation
import Imaging
import SlideIO
import Tissue

/// The tissue-mask QC pictures of one slide.
struct MaskQCStage: Stage {
    static let kind = "mask-qc"
    static let scope = StageScope.perSlide
    static let summary = "thumbnail with the tissue outline, and the binary mask"
    static let thumbnailSize = Option<Int>("thumbnail_size", 64...16384, default: TissueMaskConfig().thumbnailLongSide, placeholder: "PX",
                                           help: "long side of the thumbnail the mask is computed on")
    static let threshold = Option<Int?>("threshold", 0...255, help: "fixed saturation threshold instead of Otsu")
    static let assumeMPP = Option<Double?>("assume_mpp", 0.01...1000, help: "microns per pixel of slides that record none (sizes the area limits)")
    static let parameters = [thumbnailSize.spec, threshold.spec, assumeMPP.spec]
    static let inputs: [InputSpec] = []
    static let pictureName = "mask-qc.png"
    static let thumbnailName = "thumbnail.png"
    static let maskName = "mask.png"
    static let outputs = [
        OutputSpec(pictureName, "thumbnail with the tissue outline; glass dimmed"),
        OutputSpec(thumbnailName, "the thumbnail the mask was computed on"),
        OutputSpec(maskName, "the binary mask (white = tissue)"),
    ]

    let config: TissueMaskConfig
    let assumedMicronsPerPixel: Double?

    init(_ p: StageParameters) throws {
        var config = TissueMaskConfig()
        config.thumbnailLongSide = p[Self.thumbnailSize]
        if let t = p[Self.threshold] { config.threshold = .fixed(UInt8(t)) }
        self.config = config
        assumedMicronsPerPixel = p[Self.assumeMPP]
    }

    func run(_ context: StageContext) throws -> String {
        let slide = try Slide(path: try context.requireSlide())
        let (mask, thumbnail) = try TissueMask.compute(slide: slide, micronsPerPixel: slide.micronsPerPixel(assuming: assumedMicronsPerPixel),
                                                       config: config)
        try QCPicture.render(thumbnail: thumbnail, mask: mask).write(to: context.output + "/" + Self.pictureName)
        try thumbnail.write(to: context.output + "/" + Self.thumbnailName)
        let bits = RGBImage(width: mask.width, height: mask.height, pixels: mask.bits.flatMap { $0 == 0 ? [0, 0, 0] : [255, 255, 255] as [UInt8] })
        try bits.write(to: context.output + "/" + Self.maskName)
        return "tissue \(String(format: "%.1f", mask.tissueFraction * 100))% of the slide, saturation threshold \(mask.threshold)"
    }

    static func report(_ location: StageOutputLocation) -> ReportPart {
        guard location.slide != nil else { return ReportPart() }
        return ReportPart(figures: [(location.folder + "/" + thumbnailName, "thumbnail"),
                                    (location.folder + "/" + pictureName, "tissue mask (\(location.stageID))")])
    }
}
