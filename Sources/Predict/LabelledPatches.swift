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
    /// For tiles labelled by annotations, the source splits hold out together: the slide, or when a
    /// single slide is annotated, blocks of 8 × 8 tiles of it (neighbouring tiles share tissue, so a
    /// split across them would leak).
    public let sources: [String]?

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
        self.sources = nil
    }

    /// The labelled tiles of annotated slides: `tilings` pairs a tile stage folder with its slide.
    /// Unlabelled tiles are left out; classes are every class any slide's annotations drew.
    public init(tilings: [(folder: String, slide: String)]) throws {
        var perSlide: [(dataset: PatchDataset, labels: [String?], slide: String, blocks: [String])] = []
        var classes = Set<String>()
        for (folder, slide) in tilings {
            let tiling = TilingFolder(folder)
            guard let labelled = try tiling.tileLabels() else { continue }
            let block = max(1.0, try tiling.summary().strideLevel0 * 8)
            let blocks = try tiling.origins().map { "block-\(Int(Double($0.x) / block))-\(Int(Double($0.y) / block))" }
            perSlide.append((try tiling.patches(slidePath: slide), labelled.labels, URL(fileURLWithPath: folder).lastPathComponent, blocks))
            classes.formUnion(labelled.classes)
        }
        let names = classes.sorted()
        let singleSlide = perSlide.filter { $0.labels.contains { $0 != nil } }.count < 2
        var sources: [PatchDataset.Source] = [], labels: [Int] = [], groups: [String] = []
        for (dataset, tileLabels, slide, blocks) in perSlide {
            for (i, label) in tileLabels.enumerated() {
                guard let label, let index = names.firstIndex(of: label) else { continue }
                sources.append(dataset.sources[i])
                labels.append(index)
                groups.append(singleSlide ? slide + "/" + blocks[i] : slide)
            }
        }
        let counts = names.indices.map { c in labels.filter { $0 == c }.count }
        guard names.count >= 2, counts.filter({ $0 > 0 }).count >= 2 else {
            throw ClassifierError.notLabelled(path: tilings.first?.folder ?? "", reason: "annotations label tiles of "
                + "\(counts.filter { $0 > 0 }.count) class(es) (\(zip(names, counts).map { "\($0) \($1)" }.joined(separator: ", "))); a classifier needs two")
        }
        dataset = PatchDataset(sources: sources)
        self.labels = labels
        self.classes = names
        root = tilings.first.map { URL(fileURLWithPath: $0.folder).deletingLastPathComponent().path } ?? ""
        self.sources = groups
    }
}
