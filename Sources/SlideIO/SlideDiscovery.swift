import Foundation

/// Finds slides under a directory by the file extensions OpenSlide reads.
public enum SlideDiscovery {
    /// Aperio, Hamamatsu, Leica, MIRAX, Philips, Sakura, Trestle, Ventana, Zeiss, DICOM, generic TIFF.
    public static let extensions: Set<String> = [
        "svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide", "bif", "czi", "dcm",
    ]

    /// `path` itself when it is a file; otherwise every slide below it, recursively, sorted so
    /// every machine sees the same order.
    public static func slides(at path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SlideError.fileNotFound(path: path)
        }
        guard isDirectory.boolValue else { return [path] }
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return [] }
        var found: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let name = URL(fileURLWithPath: relative).lastPathComponent
            guard !name.hasPrefix("."), extensions.contains(URL(fileURLWithPath: relative).pathExtension.lowercased()) else { continue }
            found.append((path as NSString).appendingPathComponent(relative))
        }
        return found.sorted()
    }

    /// Output folder name for a slide: its file name without extension.
    public static func stem(of path: String) -> String {
        URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    }
}
