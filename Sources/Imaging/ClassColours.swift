/// The colours classes are drawn in everywhere (class maps, QC pictures, GeoJSON for QuPath),
/// so a class looks the same in each.
public enum ClassColours {
    /// Ten colours that stand out from H&E's pinks and purples (greens, yellows, cyans and
    /// oranges first; no magenta or violet), then repeated darker.
    public static func colour(_ k: Int) -> (UInt8, UInt8, UInt8) {
        let palette: [(UInt8, UInt8, UInt8)] = [(0, 200, 60), (255, 210, 0), (0, 190, 255), (255, 120, 0), (0, 100, 40),
                                                (140, 90, 0), (0, 0, 0), (170, 255, 120), (0, 90, 160), (255, 255, 255)]
        let base = palette[k % palette.count]
        let shade = k / palette.count
        return shade == 0 ? base : (base.0 / UInt8(shade + 1), base.1 / UInt8(shade + 1), base.2 / UInt8(shade + 1))
    }
}
