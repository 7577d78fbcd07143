/// Maps scores in 0...1 to colours.
public enum Colormap: String, CaseIterable, Sendable {
    case viridis, jet, coolwarm

    public func colour(_ t: Double) -> (UInt8, UInt8, UInt8) {
        let t = t.isFinite ? min(1, max(0, t)) : 0
        switch self {
        case .viridis: return Self.interpolate(Self.viridisAnchors, t)
        case .coolwarm: return Self.interpolate(Self.coolwarmAnchors, t)
        case .jet:
            // The classic piecewise-linear jet: blue → cyan → yellow → red, dark at both ends.
            func channel(_ centre: Double) -> UInt8 { UInt8((min(1, max(0, 1.5 - abs(4 * t - centre))) * 255).rounded()) }
            return (channel(3), channel(2), channel(1))
        }
    }

    /// Linear interpolation between anchors sampled at indices 0, 8, …, 248, 255 of the 256-entry
    /// table (within 2/255 of the full table everywhere).
    private static func interpolate(_ anchors: [(UInt8, UInt8, UInt8)], _ t: Double) -> (UInt8, UInt8, UInt8) {
        let index = t * 255
        var segment = min(Int(index / 8), anchors.count - 2)
        if segment < 0 { segment = 0 }
        let start = Double(segment * 8), end = segment == anchors.count - 2 ? 255.0 : Double(segment * 8 + 8)
        let f = (index - start) / (end - start)
        let a = anchors[segment], b = anchors[segment + 1]
        func mix(_ x: UInt8, _ y: UInt8) -> UInt8 { UInt8((Double(x) + (Double(y) - Double(x)) * f).rounded()) }
        return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// viridis (Smith & van der Walt, CC0), every 8th entry of matplotlib's table plus the last.
    static let viridisAnchors: [(UInt8, UInt8, UInt8)] = [
        (68, 1, 84), (71, 13, 96), (72, 24, 106), (72, 35, 116), (71, 45, 123), (69, 55, 129), (66, 64, 134), (62, 73, 137),
        (59, 82, 139), (55, 91, 141), (51, 99, 141), (47, 107, 142), (44, 114, 142), (41, 122, 142), (38, 130, 142), (35, 137, 142),
        (33, 145, 140), (31, 152, 139), (31, 160, 136), (34, 167, 133), (40, 174, 128), (50, 182, 122), (63, 188, 115), (78, 195, 107),
        (94, 201, 98), (112, 207, 87), (132, 212, 75), (152, 216, 62), (173, 220, 48), (194, 223, 35), (216, 226, 25), (236, 229, 27),
        (253, 231, 37),
    ]

    /// coolwarm (Moreland's diverging map), sampled the same way.
    static let coolwarmAnchors: [(UInt8, UInt8, UInt8)] = [
        (59, 76, 192), (68, 90, 204), (78, 104, 216), (88, 117, 225), (98, 130, 234), (108, 143, 241), (119, 154, 247), (130, 166, 251),
        (141, 176, 254), (152, 185, 255), (163, 194, 254), (174, 201, 252), (185, 208, 249), (195, 213, 244), (204, 217, 237), (213, 219, 229),
        (221, 220, 220), (229, 216, 209), (236, 211, 197), (241, 204, 184), (245, 196, 172), (247, 186, 159), (247, 176, 147), (246, 165, 134),
        (244, 152, 122), (240, 139, 110), (235, 125, 98), (228, 110, 86), (221, 95, 75), (212, 78, 65), (202, 59, 55), (190, 36, 46),
        (180, 4, 38),
    ]
}
