/// Everything that can go wrong opening or reading a slide; every case names the file.
public enum SlideError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case unsupportedFormat(path: String)
    case unreadable(path: String, reason: String)
    case missingResolution(path: String, needed: String)
    case invalidRequest(path: String, reason: String)
    case permissionDenied(path: String)
    case unlistableFolder(path: String, reason: String)

    public var path: String {
        switch self {
        case let .fileNotFound(path), let .unsupportedFormat(path), let .unreadable(path, _),
             let .missingResolution(path, _), let .invalidRequest(path, _), let .permissionDenied(path), let .unlistableFolder(path, _):
            return path
        }
    }

    public var description: String {
        switch self {
        case let .fileNotFound(path): return "\(path): no such file"
        case let .unsupportedFormat(path): return "\(path): not a slide format OpenSlide can read, nor a PNG/JPEG image"
        case let .unreadable(path, reason): return "\(path): corrupt or unreadable slide: \(reason)"
        case let .missingResolution(path, needed):
            return "\(path): the slide records no microns-per-pixel, which \(needed) needs; tile by --level, or give --assume-mpp"
        case let .invalidRequest(path, reason): return "\(path): \(reason)"
        case let .permissionDenied(path): return "\(path): permission denied (the file is there, but this user may not read it)"
        case let .unlistableFolder(path, reason): return "\(path): cannot list this folder: \(reason)"
        }
    }
}
