import Foundation

/// The files under a folder, walked the same way wherever the pipeline searches one (slides,
/// feature bags): links to folders and files are followed, since cohorts are often assembled
/// from links; each real folder is entered once, so a link loop ends; each real file is listed
/// once, under the first path that reaches it (paths are tried in sorted order).
public enum FolderWalk {
    public struct Unlistable: Error, CustomStringConvertible, Equatable {
        public let path: String
        public let reason: String
        public var description: String { "\(path): cannot list this folder: \(reason)" }
    }

    /// Files (not folders) under `root` whose name `keep` accepts, sorted, as paths under
    /// `root`; `depth` 0 lists `root` itself only. Hidden names are skipped. A folder that
    /// cannot be listed is an error: an empty answer would read as "no slides".
    public static func files(under root: String, depth: Int = .max, keep: (String) -> Bool) throws -> [String] {
        var visitedFolders = Set<String>(), seenFiles = Set<String>()
        var found: [String] = []
        func walk(_ folder: String, depth: Int) throws {
            guard visitedFolders.insert(realPath(folder)).inserted else { return }
            guard access(folder, R_OK | X_OK) == 0 else { throw Unlistable(path: folder, reason: String(cString: strerror(errno))) }
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
                throw Unlistable(path: folder, reason: describeError(error))
            }
            for name in names.sorted() where !name.hasPrefix(".") {
                let path = folder + "/" + name
                var isFolder: ObjCBool = false
                // fileExists follows links: a dangling link is neither, and is passed over.
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { continue }
                if isFolder.boolValue {
                    if depth > 0 { try walk(path, depth: depth - 1) }
                } else if keep(name), seenFiles.insert(realPath(path)).inserted {
                    found.append(path)
                }
            }
        }
        try walk(root, depth: depth)
        return found.sorted()
    }

    /// The path with every link resolved: what identifies a file or folder however it is reached.
    public static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
