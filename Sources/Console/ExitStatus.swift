/// An error that may lie in how the command was called (an option, a manifest, ranks started
/// with different commands) rather than in the data: `wsi` exits with its status, 2 for those,
/// as usage errors conventionally do; any other error exits with 1.
public protocol ExitStatusError: Error {
    var exitStatus: Int32 { get }
}
