import Foundation
import Tiling
import SDMAE

/// Patches in the ImageFolder convention: one sub-folder per class (sorted by name), images or
/// patch shards anywhere below it.
public struct LabelledPatches {
    public let dataset: PatchDataset
    public let labels: [Int]
    public let classes: [String]
    public let root: String

    public init(root: String) throws {
        self.root = root
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ClassifierError.notLabelled(path: root, reason: "not a directory")
        }
        let folders = try FileManager.default.contentsOfDirectory(atPath: root).sorted().filter { name in
            var folder: ObjCBool = false
            return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: root + "/" + name, isDirectory: &folder) && folder.boolValue
        }
        guard folders.count >= 2 else {
            throw ClassifierError.notLabelled(path: root, reason: "needs one sub-folder per class, at least two (found \(folders.count))")
        }
        var sources: [PatchDataset.Source] = []
        var labels: [Int] = []
        for (label, folder) in folders.enumerated() {
            let members: PatchDataset
            do { members = try PatchDataset(paths: [root + "/" + folder]) } catch DatasetError.empty {
                throw ClassifierError.notLabelled(path: root + "/" + folder, reason: "class folder holds no PNG/JPEG patches or shards")
            }
            sources += members.sources
            labels += [Int](repeating: label, count: members.count)
        }
        dataset = PatchDataset(sources: sources)
        self.labels = labels
        classes = folders
    }
}
