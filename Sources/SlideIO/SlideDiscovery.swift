import Foundation
import Storage

/// Finds slides under a directory by the file extensions OpenSlide reads.
public enum SlideDiscovery {
    /// Aperio, Hamamatsu, Leica, MIRAX, Philips, Sakura, Trestle, Ventana, Zeiss, DICOM, generic
    /// TIFF; and plain PNG/JPEG pictures, which open as one-level slides here as they do when
    /// named one at a time.
    public static let extensions: Set<String> = [
        "svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide", "bif", "czi", "dcm", "png", "jpg", "jpeg",
    ]

    /// `path` itself when it is a file; otherwise every slide below it, recursively, sorted so
    /// every machine sees the same order. A folder that cannot be read is an error, not a gap.
    public static func slides(at path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SlideError.fileNotFound(path: path)
        }
        guard isDirectory.boolValue else { return [path] }
        do {
            return try FolderWalk.files(under: path) { extensions.contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }
        } catch let error as FolderWalk.Unlistable {
            throw SlideError.unlistableFolder(path: error.path, reason: error.reason)
        }
    }

    /// Output folder name for a slide: its file name without extension.
    public static func stem(of path: String) -> String {
        URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    }
}
