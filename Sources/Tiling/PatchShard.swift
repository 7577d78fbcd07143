import Foundation
import Imaging
import Storage

/// One packed file of equally sized RGB8 patches with their level-0 coordinates.
///
/// Layout (little-endian): a 64-byte header (`WSISHRD1`, version, width, height, channels,
/// count, index offset), then `count` raw records of width*height*3 bytes, then the index:
/// per record x:int64, y:int64, tissue fraction:float32, level:int32. Fixed-size records let a
/// trainer read any patch with one `pread` and no decoding.
public enum PatchShard {
    public static let magic = Array("WSISHRD1".utf8)
    public static let headerSize = 64
    public static let indexEntrySize = 24
    public static let fileName = "patches.shard"
}

public struct PatchRecord: Equatable, Sendable {
    public var x: Int
    public var y: Int
    public var tissueFraction: Float
    public var level: Int
}

public final class PatchShardWriter {
    public let path: String
    public let patchSize: Int
    private let file: AtomicFile
    private var index: [PatchRecord] = []

    public init(path: String, patchSize: Int) throws {
        self.path = path
        self.patchSize = patchSize
        file = try AtomicFile(path: path)
        try file.write([UInt8](repeating: 0, count: PatchShard.headerSize))
    }

    public func append(_ patch: RGBImage, _ record: PatchRecord) throws {
        precondition(patch.width == patchSize && patch.height == patchSize, "shard patches must all be \(patchSize)x\(patchSize)")
        try file.write(patch.pixels)
        index.append(record)
    }

    public func commit() throws {
        let indexOffset = PatchShard.headerSize + index.count * patchSize * patchSize * 3
        var bytes: [UInt8] = []
        bytes.reserveCapacity(index.count * PatchShard.indexEntrySize)
        for record in index {
            bytes.append(contentsOf: littleEndian(Int64(record.x)))
            bytes.append(contentsOf: littleEndian(Int64(record.y)))
            bytes.append(contentsOf: littleEndian(record.tissueFraction.bitPattern))
            bytes.append(contentsOf: littleEndian(Int32(record.level)))
        }
        try file.write(bytes)
        var header = PatchShard.magic
        header += littleEndian(UInt32(1))
        header += littleEndian(UInt32(patchSize)) + littleEndian(UInt32(patchSize)) + littleEndian(UInt32(3))
        header += littleEndian(UInt64(index.count)) + littleEndian(UInt64(indexOffset))
        try file.write(header, at: 0)
        try file.commit()
    }
}

public final class PatchShardReader: @unchecked Sendable {
    public let path: String
    public let patchSize: Int
    public let records: [PatchRecord]
    private let descriptor: Int32

    public var count: Int { records.count }

    public init(path: String) throws {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StorageError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        var header = [UInt8](repeating: 0, count: PatchShard.headerSize)
        guard pread(descriptor, &header, header.count, 0) == header.count, Array(header[0..<8]) == PatchShard.magic else {
            close(descriptor)
            throw StorageError.malformed(path: path, reason: "not a patch shard (bad magic)")
        }
        let width = Int(readLE(header, 12, UInt32.self)), height = Int(readLE(header, 16, UInt32.self))
        let count = Int(readLE(header, 24, UInt64.self)), indexOffset = Int(readLE(header, 32, UInt64.self))
        guard width == height, width > 0, indexOffset == PatchShard.headerSize + count * width * height * 3 else {
            close(descriptor)
            throw StorageError.malformed(path: path, reason: "inconsistent header")
        }
        patchSize = width
        var index = [UInt8](repeating: 0, count: count * PatchShard.indexEntrySize)
        guard pread(descriptor, &index, index.count, off_t(indexOffset)) == index.count else {
            close(descriptor)
            throw StorageError.malformed(path: path, reason: "truncated index")
        }
        records = (0..<count).map { i in
            let o = i * PatchShard.indexEntrySize
            return PatchRecord(x: Int(readLE(index, o, Int64.self)), y: Int(readLE(index, o + 8, Int64.self)),
                               tissueFraction: Float(bitPattern: readLE(index, o + 16, UInt32.self)),
                               level: Int(readLE(index, o + 20, Int32.self)))
        }
    }

    deinit { close(descriptor) }

    public func patch(_ i: Int) throws -> RGBImage {
        let recordSize = patchSize * patchSize * 3
        var pixels = [UInt8](repeating: 0, count: recordSize)
        let n = pread(descriptor, &pixels, recordSize, off_t(PatchShard.headerSize + i * recordSize))
        guard n == recordSize else { throw StorageError.malformed(path: path, reason: "record \(i) is truncated") }
        return RGBImage(width: patchSize, height: patchSize, pixels: pixels)
    }
}

private func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}

private func readLE<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, _: T.Type) -> T {
    var value: T = 0
    withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes[offset..<offset + MemoryLayout<T>.size]) }
    return T(littleEndian: value)
}
