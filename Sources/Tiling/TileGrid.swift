import SlideIO

/// The physical scale at which tiles are cut.
public enum TileResolution: Equatable, Sendable {
    /// Target microns per pixel of the output patches (e.g. 0.5 ≈ 20x).
    case micronsPerPixel(Double)
    /// Target objective magnification, relative to the slide's recorded objective power.
    case magnification(Double)
    /// A pyramid level as it is, without resampling.
    case level(Int)
}

public struct TileGridSpec: Equatable, Sendable {
    public var resolution: TileResolution
    /// Output patch side in pixels.
    public var size: Int
    /// Overlap between neighbouring patches, in output pixels.
    public var overlap: Int

    public init(resolution: TileResolution, size: Int = 256, overlap: Int = 0) {
        self.resolution = resolution
        self.size = size
        self.overlap = overlap
    }
}

/// A planned grid: where each tile lies in level-0 pixels and how to read it.
public struct TileGrid: Equatable, Sendable {
    public let spec: TileGridSpec
    /// Pyramid level the pixels are read from.
    public let readLevel: Int
    /// Side of the region read at `readLevel`; resampled to `spec.size` when they differ.
    public let readSize: Int
    /// Level-0 pixels per output pixel.
    public let scale: Double
    /// Side of a tile in level-0 pixels.
    public let footprint: Int
    /// Level-0 distance between neighbouring tiles.
    public let stride: Double
    public let columns: Int
    public let rows: Int
    /// Microns per pixel of the output patches, when the slide's resolution is known.
    public let outputMicronsPerPixel: Double?
    /// The level-0 resolution the grid was computed with.
    public let micronsPerPixel: Double?

    public var count: Int { columns * rows }

    /// How many times tiles are enlarged when the grid asks for finer pixels than level 0 has
    /// (40× of a 20× scan is 2); nil when they are not. Enlarged pixels add no detail.
    public var enlargement: Double? { scale < 0.99 ? 1 / scale : nil }

    /// Level-0 top-left corner of tile (`column`, `row`).
    public func origin(column: Int, row: Int) -> (x: Int, y: Int) {
        (Int((Double(column) * stride).rounded()), Int((Double(row) * stride).rounded()))
    }

    /// `micronsPerPixel`: the level-0 resolution decided by the caller (the slide's, or one the
    /// user assumed for a slide that records none).
    public init(slide: Slide, spec: TileGridSpec, micronsPerPixel mpp: Double?) throws {
        guard spec.size > 0 else { throw SlideError.invalidRequest(path: slide.path, reason: "tile size must be positive") }
        guard spec.overlap >= 0, spec.overlap < spec.size else {
            throw SlideError.invalidRequest(path: slide.path, reason: "overlap must be in 0..<size (got \(spec.overlap))")
        }
        self.spec = spec
        switch spec.resolution {
        case let .micronsPerPixel(target):
            guard target > 0 else { throw SlideError.invalidRequest(path: slide.path, reason: "target mpp must be positive") }
            guard let mpp else { throw SlideError.missingResolution(path: slide.path, needed: "a grid at \(target) µm/px") }
            scale = target / mpp
        case let .magnification(target):
            guard target > 0 else { throw SlideError.invalidRequest(path: slide.path, reason: "magnification must be positive") }
            if let power = slide.objectivePower, power > 0 {
                scale = power / target
            } else if let mpp {
                // No objective power recorded: use the convention 10x ≈ 1 µm/px.
                scale = (10 / target) / mpp
            } else {
                throw SlideError.missingResolution(path: slide.path, needed: "a grid at \(target)x magnification")
            }
        case let .level(level):
            guard slide.levels.indices.contains(level) else {
                throw SlideError.invalidRequest(path: slide.path, reason: "level \(level) does not exist (the slide has \(slide.levels.count))")
            }
            scale = slide.levels[level].downsample
        }
        if case let .level(level) = spec.resolution {
            readLevel = level
            readSize = spec.size
        } else {
            readLevel = slide.bestLevel(forDownsample: scale)
            // A level whose downsample matches the target within 1% is read as is: resampling by
            // 0.999 only blurs.
            let ratio = scale / slide.levels[readLevel].downsample
            readSize = abs(ratio - 1) < 0.01 ? spec.size : Int((Double(spec.size) * ratio).rounded())
        }
        footprint = Int((Double(spec.size) * scale).rounded())
        stride = Double(spec.size - spec.overlap) * scale
        let scale = scale
        outputMicronsPerPixel = mpp.map { $0 * scale }
        micronsPerPixel = mpp
        let (w, h) = slide.dimensions
        // Only whole tiles inside the slide: a padded edge tile would teach a model the glass edge.
        func count(_ extent: Int, _ footprint: Int, _ stride: Double) -> Int {
            extent >= footprint ? Int((Double(extent - footprint) / stride).rounded(.down)) + 1 : 0
        }
        columns = count(w, footprint, stride)
        rows = count(h, footprint, stride)
    }
}
