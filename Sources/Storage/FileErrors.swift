import Foundation

/// Plain words for an error at the file-system boundary. Foundation's errors keep the reason a
/// person needs ("No space left on device", "Permission denied") in an underlying POSIX error
/// and print a domain and code instead; decoding errors print a coding path.
public func describeError(_ error: Error) -> String {
    if let error = error as? DecodingError { return "malformed JSON: " + JSONText.shapeError(error) }
    if error is EncodingError { return "a value cannot be written as JSON (not a finite number?)" }
    let nsError = error as NSError
    // The project's own errors already say what happened, naming the file.
    guard nsError.domain == NSCocoaErrorDomain || nsError.domain == NSPOSIXErrorDomain else { return String(describing: error) }
    let path = (nsError.userInfo[NSFilePathErrorKey] as? String) ?? (nsError.userInfo[NSURLErrorKey] as? URL)?.path
    var reason: String?
    if nsError.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(nsError.code)))
    } else if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(underlying.code)))
    } else if nsError.domain == NSCocoaErrorDomain {
        switch CocoaError.Code(rawValue: nsError.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: reason = "no such file or folder"
        case .fileReadNoPermission, .fileWriteNoPermission: reason = "permission denied"
        case .fileWriteOutOfSpace: reason = String(cString: strerror(ENOSPC))
        case .fileWriteFileExists: reason = "already exists"
        case .fileWriteVolumeReadOnly: reason = String(cString: strerror(EROFS))
        case .fileReadCorruptFile: reason = "the file is damaged or not in the expected format"
        default: reason = nil
        }
    }
    let words = reason ?? nsError.localizedDescription
    return path.map { "\($0): \(words)" } ?? words
}
