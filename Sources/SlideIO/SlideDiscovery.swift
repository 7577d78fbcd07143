import Foundation

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
        let root = URL(fileURLWithPath: path)
        var unreadable: (path: String, reason: String)?
        let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                                        options: [.skipsHiddenFiles]) { url, error in
            let code = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError)?.code ?? Int(EACCES)
            if unreadable == nil { unreadable = (url.path, String(cString: strerror(Int32(code)))) }
            return true
        }
        guard let enumerator else { throw SlideError.unreadable(path: path, reason: "cannot list the folder") }
        // Folders can only be listed by someone allowed to: check before trusting an empty list.
        if access(path, R_OK | X_OK) != 0 { throw SlideError.unlistableFolder(path: path, reason: String(cString: strerror(errno))) }
        var found: [String] = []
        for case let url as URL in enumerator where extensions.contains(url.pathExtension.lowercased()) {
            // MIRAX and some DICOM slides are folders with a slide-like name: OpenSlide takes the file beside them.
            // A symbolic link to a slide file counts (cohorts are often linked into a run folder).
            guard (try? url.resolvingSymlinksInPath().resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
            found.append(path + "/" + url.path.dropFirst(root.path.count).drop { $0 == "/" })
        }
        if let unreadable { throw SlideError.unlistableFolder(path: unreadable.path, reason: unreadable.reason) }
        return found.sorted()
    }

    /// Output folder name for a slide: its file name without extension.
    public static func stem(of path: String) -> String {
        URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    }
}
