import Cluster
import Foundation

/// Whether a stage runs once per slide or once for the whole batch.
public enum StageScope: String, Codable, Sendable {
    case perSlide = "per-slide"
    case global
}

/// What a stage consumes: another stage's output (by id) or paths.
public struct InputSpec: Sendable {
    public var name: String
    public var required: Bool
    /// Several sources may be given (a list in a manifest, the option repeated on the command line).
    public var multiple: Bool
    /// The source is a stage folder with one sub-folder per slide (tiles, predictions); other
    /// inputs are read as they are (a checkpoint, a classifier, patch folders).
    public var perSlide: Bool
    /// Required unless this parameter is given (the checkpoint input, unless an encoder is named).
    public var unlessParameter: String?
    /// The kinds of stage whose output this input reads, when it reads another stage's (a
    /// manifest that feeds it another kind is refused before anything runs); nil: any.
    public var reads: [String]?
    public var help: String

    public init(_ name: String, required: Bool = true, unlessParameter: String? = nil, multiple: Bool = false, perSlide: Bool = false,
                reads: [String]? = nil, help: String) {
        self.name = name
        self.required = required
        self.unlessParameter = unlessParameter
        self.reads = reads
        self.multiple = multiple
        self.perSlide = perSlide
        self.help = help
    }
}

/// A file a stage writes into its output folder, for help texts and docs/stages.md.
public struct OutputSpec: Sendable {
    public var name: String
    public var help: String

    public init(_ name: String, _ help: String) {
        self.name = name
        self.help = help
    }
}

/// Everything a stage run sees. Outputs go to `output`, a private folder that becomes visible
/// under its final name only when `run` returns.
public struct StageContext: Sendable {
    /// The slide, for per-slide stages.
    public var slide: String?
    /// Every slide of the run (after sharding).
    public var slides: [String]
    public var output: String
    /// Per declared input: resolved folders or files. A per-slide upstream gives this slide's
    /// folder to a per-slide stage and every slide's folder to a global one.
    public var inputs: [String: [String]]
    public var showProgress: Bool
    /// The ranks of a data-parallel job running this item together (`runsOnEveryRank` stages);
    /// one process otherwise.
    public var group = ProcessGroup.single

    public func input(_ name: String) throws -> [String] {
        guard let paths = inputs[name], !paths.isEmpty else { throw StageError.missingInput(name) }
        return paths
    }

    /// The slide of a per-slide stage; the runner always sets it for them.
    public func requireSlide() throws -> String {
        guard let slide else { throw StageError.failed("this stage runs per slide and was given none") }
        return slide
    }
}

public enum StageError: Error, CustomStringConvertible, Equatable {
    case missingInput(String)
    case invalid(String)
    case failed(String)

    public var description: String {
        switch self {
        case let .missingInput(name): return "input '\(name)' has nothing to read (did its stage fail?)"
        case let .invalid(message), let .failed(message): return message
        }
    }
}

/// Where a finished stage item's output lies, for the report.
public struct StageOutputLocation: Sendable {
    /// The run's output root.
    public var root: String
    /// The item's folder relative to `root` (a slide's sub-folder for per-slide stages).
    public var folder: String
    public var stageID: String
    /// The slide's name for a per-slide section; nil for the batch section.
    public var slide: String?

    public var path: String { root + "/" + folder }
}

/// What a stage contributes to the HTML report: markup and pictures (paths relative to the root).
public struct ReportPart: Sendable {
    public var html = ""
    public var figures: [(file: String, caption: String)] = []

    public init(html: String = "", figures: [(file: String, caption: String)] = []) {
        self.html = html
        self.figures = figures
    }
}

/// A pipeline stage, declared once for the command line and the manifests: one file
/// implementing this plus one line in `StageRegistry`.
public protocol Stage: Sendable {
    static var kind: String { get }
    static var scope: StageScope { get }
    static var summary: String { get }
    static var parameters: [ParameterSpec] { get }
    static var inputs: [InputSpec] { get }
    static var outputs: [OutputSpec] { get }
    /// Checks what one option alone cannot (one grid option, overlap below size); throws
    /// `StageError.invalid`.
    init(_ parameters: StageParameters) throws
    /// Returns a one-line summary of what was done ("812 tiles kept …"), or "".
    func run(_ context: StageContext) throws -> String
    /// Stages that keep their own progress (pretraining checkpoints) may continue in a partial
    /// folder left by a killed run; the others start clean.
    static var resumesPartialOutput: Bool { get }
    /// Under `mpirun`/`srun` every rank runs this stage's items together (data-parallel
    /// training); the leader alone runs the other stages and writes every output.
    static var runsOnEveryRank: Bool { get }
    /// This stage's part of the report, for the batch (`slide == nil`) or for one slide.
    static func report(_ location: StageOutputLocation) -> ReportPart
}

extension Stage {
    public static var resumesPartialOutput: Bool { false }
    public static var runsOnEveryRank: Bool { false }
    public static func report(_ location: StageOutputLocation) -> ReportPart { ReportPart() }
}

/// If `path` is a folder, the named file inside it (stage folders hold files with fixed names);
/// otherwise `path` itself.
func file(_ path: String, named name: String) -> String {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return path + "/" + name }
    return path
}

/// Seconds since 1970 of the last change to `path`, 0 when it cannot be read.
func modificationTime(_ path: String) -> Double {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
}

/// The latest change to `path` or, for a folder, to anything directly inside it (a file edited in
/// place does not touch its folder's time).
func contentTime(_ path: String) -> Double {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return 0 }
    guard isDirectory.boolValue else { return modificationTime(path) }
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    return names.map { modificationTime(path + "/" + $0) }.reduce(modificationTime(path), max)
}

/// HTML text escaping for report parts.
func escapeHTML(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
