import Foundation

/// PyTorch's checkpoint format (`torch.save` since 1.6: `pytorch_model.bin`, `.pth`, `.pt`): a zip
/// archive whose `data.pkl` pickles the state dict and whose `data/<key>` members hold each
/// storage's raw little-endian bytes. The pickle is read by a small interpreter that builds only
/// dicts, lists, tuples, numbers, strings and tensor references: it knows the handful of globals a
/// state dict uses and refuses any other by name, so a checkpoint can never run code here.
public enum PyTorchCheckpoint {
    /// Globals a state dict may name. Anything else (`os.system`, `builtins.eval`, a model class)
    /// is refused.
    static let storageTypes: [String: TensorDType] = [
        "torch FloatStorage": .f32, "torch HalfStorage": .f16, "torch BFloat16Storage": .bf16,
    ]
    static let functions: Set<String> = ["collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter"]

    /// Every tensor of the checkpoint; tensors inside nested dicts (`{"model": {...}}`) are named
    /// with their path (`model.blocks.0...`).
    public static func index(path: String) throws -> TensorFile {
        let archive = try ZipArchive(path: path)
        guard let pickleName = archive.members.keys.filter({ $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }).min(by: { $0.count < $1.count }),
              let pickleMember = archive.members[pickleName] else {
            throw StorageError.malformed(path: path, reason: "a zip archive without data.pkl: not a PyTorch checkpoint")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        let pickle = try archive.file.bytes(at: pickleMember.start, count: pickleMember.size, reading: pickleName)
        var machine = Unpickler(bytes: pickle, path: path)
        let root = try machine.run()
        var names: [String] = []
        var entries: [String: TensorEntry] = [:]
        func collect(_ value: PickleValue, under name: String) throws {
            switch value {
            case let .dict(dict):
                for (key, item) in dict.items {
                    guard case let .string(text) = key else { continue }
                    try collect(item, under: name.isEmpty ? text : name + "." + text)
                }
            case let .tensor(reference):
                let memberName = prefix + "data/" + reference.storageKey
                guard let member = archive.members[memberName] else {
                    throw StorageError.malformed(path: path, reason: "\(name): its storage \(memberName) is not in the archive")
                }
                guard member.size >= reference.storageCount * reference.dtype.size else {
                    throw StorageError.malformed(path: path, reason: "\(name): storage \(memberName) holds \(member.size) bytes, "
                        + "fewer than its \(reference.storageCount) elements")
                }
                entries[name] = TensorEntry(dtype: reference.dtype, shape: reference.shape, strides: reference.strides,
                                            storageStart: member.start, storageCount: reference.storageCount, offset: reference.offset)
                names.append(name)
            default:
                break  // epochs, optimiser settings and other non-tensor entries of a wrapped checkpoint
            }
        }
        try collect(root, under: "")
        return TensorFile(path: path, names: names, entries: entries)
    }
}

/// A tensor as `_rebuild_tensor_v2` describes it: a view of a storage.
struct TensorReference {
    var dtype: TensorDType
    var storageKey: String
    var storageCount: Int
    var offset: Int
    var shape: [Int]
    var strides: [Int]
}

/// Dicts and lists are shared and filled after creation (SETITEMS, APPENDS), so they are references.
final class PickleDict { var items: [(PickleValue, PickleValue)] = [] }
final class PickleList { var items: [PickleValue] = [] }

indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// An allowed global, "module name".
    case global(String)
    case storage(dtype: TensorDType, key: String, count: Int)
    case tensor(TensorReference)
    case mark
}

/// The pickle opcodes of protocols 2–5 that a state dict uses.
struct Unpickler {
    let bytes: [UInt8]
    let path: String
    private var position = 0
    private var stack: [PickleValue] = []
    private var memo: [Int: PickleValue] = [:]

    init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    private func fail(_ reason: String) -> StorageError {
        .malformed(path: path, reason: "data.pkl at byte \(position): \(reason)")
    }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - position else { throw fail("the pickle ends early") }
        defer { position += count }
        return bytes[position..<position + count]
    }

    private mutating func unsigned(_ count: Int) throws -> Int {
        let slice = try take(count)
        var value: UInt64 = 0
        for (i, byte) in slice.enumerated() { value |= UInt64(byte) << (8 * UInt64(i)) }
        guard value <= UInt64(Int.max) else { throw fail("a length of \(value) bytes") }
        return Int(value)
    }

    /// LONG1: little-endian two's complement of `count` bytes.
    private mutating func signed(_ count: Int) throws -> Int {
        guard count <= 8 else { throw fail("an integer of \(count) bytes") }
        let slice = Array(try take(count))
        guard !slice.isEmpty else { return 0 }
        var value: UInt64 = 0
        for (i, byte) in slice.enumerated() { value |= UInt64(byte) << (8 * UInt64(i)) }
        if count < 8, slice[count - 1] & 0x80 != 0 { value |= ~0 << (8 * UInt64(count)) }
        return Int(Int64(bitPattern: value))
    }

    private mutating func text(_ count: Int) throws -> String {
        String(decoding: try take(count), as: UTF8.self)
    }

    private mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast() else { throw fail("the stack is empty") }
        return value
    }

    /// The values above the topmost MARK, which is removed.
    private mutating func popToMark() throws -> [PickleValue] {
        guard let mark = stack.lastIndex(where: { if case .mark = $0 { return true } else { return false } }) else {
            throw fail("no MARK on the stack")
        }
        let values = Array(stack[(mark + 1)...])
        stack.removeSubrange(mark...)
        return values
    }

    private mutating func global(_ name: String) throws -> PickleValue {
        guard PyTorchCheckpoint.functions.contains(name) || PyTorchCheckpoint.storageTypes[name] != nil else {
            throw StorageError.malformed(path: path, reason: "refused: the pickle names the global '\(name.replacingOccurrences(of: " ", with: "."))', "
                + "which a state dict never needs (a pickle that calls it could run code); only tensors and dicts are read")
        }
        return .global(name)
    }

    mutating func run() throws -> PickleValue {
        while true {
            guard let opcode = try take(1).first else { throw fail("the pickle ends early") }
            if opcode == UInt8(ascii: ".") { return try pop() }                    // STOP
            let handled = try pushValue(opcode) || (try recallOrCall(opcode)) || (try build(opcode))
            guard handled else { throw fail(String(format: "opcode 0x%02X is not one a state dict uses; refused", opcode)) }
        }
    }

    /// Opcodes that push a constant: framing, empty containers, numbers, text and bytes.
    private mutating func pushValue(_ opcode: UInt8) throws -> Bool {
        switch opcode {
        case 0x80: _ = try take(1)                                            // PROTO
        case 0x95: _ = try take(8)                                            // FRAME
        case UInt8(ascii: "}"): stack.append(.dict(PickleDict()))
        case UInt8(ascii: "]"): stack.append(.list(PickleList()))
        case UInt8(ascii: ")"): stack.append(.tuple([]))
        case UInt8(ascii: "("): stack.append(.mark)
        case UInt8(ascii: "N"): stack.append(.none)
        case 0x88: stack.append(.bool(true))
        case 0x89: stack.append(.bool(false))
        case UInt8(ascii: "X"): stack.append(.string(try text(try unsigned(4))))
        case 0x8C: stack.append(.string(try text(try unsigned(1))))
        case 0x8D: stack.append(.string(try text(try unsigned(8))))
        case UInt8(ascii: "U"): stack.append(.string(try text(try unsigned(1))))
        case UInt8(ascii: "T"): stack.append(.string(try text(try unsigned(4))))
        case UInt8(ascii: "C"): stack.append(.bytes(Array(try take(try unsigned(1)))))
        case UInt8(ascii: "B"): stack.append(.bytes(Array(try take(try unsigned(4)))))
        case UInt8(ascii: "K"): stack.append(.int(try unsigned(1)))
        case UInt8(ascii: "M"): stack.append(.int(try unsigned(2)))
        case UInt8(ascii: "J"): stack.append(.int(try signed(4)))
        case 0x8A: stack.append(.int(try signed(try unsigned(1))))           // LONG1
        case UInt8(ascii: "G"):
            let raw = try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            stack.append(.float(Double(bitPattern: raw)))
        default: return false
        }
        return true
    }

    /// The memo, globals (only the allowed ones), persistent ids and calls.
    private mutating func recallOrCall(_ opcode: UInt8) throws -> Bool {
        switch opcode {
        case UInt8(ascii: "q"): memo[try unsigned(1)] = try top()
        case UInt8(ascii: "r"): memo[try unsigned(4)] = try top()
        case 0x94: memo[memo.count] = try top()                               // MEMOIZE
        case UInt8(ascii: "h"): stack.append(try recall(try unsigned(1)))
        case UInt8(ascii: "j"): stack.append(try recall(try unsigned(4)))
        case UInt8(ascii: "c"):
            let line = try readLine() + " " + readLine()
            stack.append(try global(line))
        case 0x93:                                                            // STACK_GLOBAL
            guard case let .string(name) = try pop(), case let .string(module) = try pop() else { throw fail("STACK_GLOBAL without names") }
            stack.append(try global(module + " " + name))
        case UInt8(ascii: "Q"): stack.append(try persistent(try pop()))
        case UInt8(ascii: "R"):
            let arguments = try pop(), function = try pop()
            stack.append(try reduce(function, arguments))
        default: return false
        }
        return true
    }

    /// Tuples, and filling dicts and lists.
    private mutating func build(_ opcode: UInt8) throws -> Bool {
        switch opcode {
        case UInt8(ascii: "t"): stack.append(.tuple(try popToMark()))
        case 0x85: stack.append(.tuple([try pop()]))
        case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))
        case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))
        case UInt8(ascii: "b"): _ = try pop()                                  // BUILD: a dict's attributes (_metadata) are not needed
        case UInt8(ascii: "s"):
            let value = try pop(), key = try pop()
            guard case let .dict(dict) = try top() else { throw fail("SETITEM on something not a dict") }
            dict.items.append((key, value))
        case UInt8(ascii: "u"):
            let values = try popToMark()
            guard case let .dict(dict) = try top(), values.count % 2 == 0 else { throw fail("SETITEMS on something not a dict") }
            for i in stride(from: 0, to: values.count, by: 2) { dict.items.append((values[i], values[i + 1])) }
        case UInt8(ascii: "a"):
            let value = try pop()
            guard case let .list(list) = try top() else { throw fail("APPEND on something not a list") }
            list.items.append(value)
        case UInt8(ascii: "e"):
            let values = try popToMark()
            guard case let .list(list) = try top() else { throw fail("APPENDS on something not a list") }
            list.items += values
        default: return false
        }
        return true
    }

    private func top() throws -> PickleValue {
        guard let value = stack.last else { throw fail("the stack is empty") }
        return value
    }

    private func recall(_ index: Int) throws -> PickleValue {
        guard let value = memo[index] else { throw fail("memo entry \(index) was never stored") }
        return value
    }

    private mutating func readLine() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A), end - position < 256 else { throw fail("an unterminated GLOBAL") }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    /// ('storage', storage type, key, location, element count).
    private func persistent(_ id: PickleValue) throws -> PickleValue {
        guard case let .tuple(parts) = id, parts.count == 5, case .string("storage") = parts[0], case let .global(type) = parts[1],
              let dtype = PyTorchCheckpoint.storageTypes[type], case let .string(key) = parts[2], case let .int(count) = parts[4],
              count >= 0, !key.contains("/"), !key.contains("..") else {
            throw fail("a persistent id that is not a tensor storage (float32, float16 or bfloat16)")
        }
        return .storage(dtype: dtype, key: key, count: count)
    }

    private func integers(_ value: PickleValue) -> [Int]? {
        guard case let .tuple(items) = value else { return nil }
        var result: [Int] = []
        for item in items { guard case let .int(n) = item else { return nil }; result.append(n) }
        return result
    }

    private func reduce(_ function: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
        guard case let .global(name) = function, case let .tuple(args) = arguments else { throw fail("REDUCE on something not callable") }
        switch name {
        case "collections OrderedDict":
            return .dict(PickleDict())
        case "torch._utils _rebuild_tensor_v2":
            guard args.count >= 4, case let .storage(dtype, key, count) = args[0], case let .int(offset) = args[1],
                  let shape = integers(args[2]), let strides = integers(args[3]), shape.count == strides.count,
                  shape.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }), strides.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }), offset >= 0,
                  offset < 1 << 40, count < 1 << 40 else {
                throw fail("_rebuild_tensor_v2 with arguments that do not describe a tensor")
            }
            // The element count must stay a number: a forged shape's product could overflow.
            var elements = 1
            for extent in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
                guard !overflow, product < 1 << 40 else { throw fail("a tensor of shape \(shape) is larger than any model's") }
                elements = product
            }
            // A state dict's tensors are views of at most their storage; a forged stride of 0 could
            // otherwise make a few stored bytes ask for gigabytes when widened.
            guard elements <= count else { throw fail("a tensor of shape \(shape) has more values than its storage's \(count)") }
            return .tensor(TensorReference(dtype: dtype, storageKey: key, storageCount: count, offset: offset, shape: shape, strides: strides))
        case "torch._utils _rebuild_parameter":
            guard let tensor = args.first, case .tensor = tensor else { throw fail("_rebuild_parameter without a tensor") }
            return tensor
        default:
            throw fail("\(name) cannot be called")
        }
    }
}

/// The central directory of a zip archive (zip64 too: ViT-g checkpoints pass 4 GB). PyTorch stores
/// its members uncompressed; compressed members are refused.
struct ZipArchive {
    struct Member { var start: Int; var size: Int }
    let file: FileReader
    private(set) var members: [String: Member] = [:]

    init(path: String) throws {
        file = try FileReader(path: path)
        let tailLength = min(file.size, 65_557)
        let tail = try file.bytes(at: file.size - tailLength, count: tailLength, reading: "the zip directory")
        guard let end = Self.find(0x06054B50, in: tail) else {
            throw StorageError.malformed(path: path, reason: "no zip end-of-directory record: the archive is truncated or not a zip")
        }
        let endOffset = file.size - tailLength + end
        var count = Self.read(tail, end + 10, 2), size = Self.read(tail, end + 12, 4), offset = Self.read(tail, end + 16, 4)
        if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
            let locator = try file.bytes(at: endOffset - 20, count: 20, reading: "the zip64 locator")
            guard Self.read(locator, 0, 4) == 0x07064B50 else { throw StorageError.malformed(path: path, reason: "a zip64 archive without its locator") }
            let record = try file.bytes(at: Self.read(locator, 8, 8), count: 56, reading: "the zip64 directory record")
            guard Self.read(record, 0, 4) == 0x06064B50 else { throw StorageError.malformed(path: path, reason: "a damaged zip64 directory record") }
            count = Self.read(record, 32, 8); size = Self.read(record, 40, 8); offset = Self.read(record, 48, 8)
        }
        let directory = try file.bytes(at: offset, count: size, reading: "the zip central directory")
        var at = 0
        for _ in 0..<count {
            guard at + 46 <= directory.count, Self.read(directory, at, 4) == 0x02014B50 else {
                throw StorageError.malformed(path: path, reason: "a damaged zip central directory")
            }
            let method = Self.read(directory, at + 10, 2)
            var compressed = Self.read(directory, at + 20, 4)
            let nameLength = Self.read(directory, at + 28, 2), extraLength = Self.read(directory, at + 30, 2)
            let commentLength = Self.read(directory, at + 32, 2)
            var local = Self.read(directory, at + 42, 4)
            guard at + 46 + nameLength + extraLength <= directory.count else { throw StorageError.malformed(path: path, reason: "a damaged zip entry") }
            let name = String(decoding: directory[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            // Zip64 sizes and offsets replace the fields that read 0xFFFFFFFF, in this order.
            var extra = at + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = Self.read(directory, extra, 2), length = Self.read(directory, extra + 2, 2)
                if id == 1 {
                    var field = extra + 4
                    if Self.read(directory, at + 24, 4) == 0xFFFF_FFFF { field += 8 }
                    if compressed == 0xFFFF_FFFF, field + 8 <= extraEnd { compressed = Self.read(directory, field, 8); field += 8 }
                    if local == 0xFFFF_FFFF, field + 8 <= extraEnd { local = Self.read(directory, field, 8) }
                }
                extra += 4 + length
            }
            at = extraEnd + commentLength
            guard method == 0 else {
                throw StorageError.malformed(path: path, reason: "\(name) is compressed (method \(method)); PyTorch stores members uncompressed")
            }
            let header = try file.bytes(at: local, count: 30, reading: "the zip entry \(name)")
            guard Self.read(header, 0, 4) == 0x04034B50 else { throw StorageError.malformed(path: path, reason: "\(name): a damaged zip entry header") }
            let start = local + 30 + Self.read(header, 26, 2) + Self.read(header, 28, 2)
            guard start <= file.size, compressed <= file.size - start else {
                throw StorageError.malformed(path: path, reason: "\(name): its data lies past the end of the archive")
            }
            members[name] = Member(start: start, size: compressed)
        }
    }

    private static func read(_ bytes: [UInt8], _ at: Int, _ count: Int) -> Int {
        guard at >= 0, at + count <= bytes.count else { return -1 }
        var value: UInt64 = 0
        for i in 0..<count { value |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
        return Int(truncatingIfNeeded: min(value, UInt64(Int.max)))
    }

    private static func find(_ signature: Int, in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 22 else { return nil }
        for at in stride(from: bytes.count - 22, through: 0, by: -1) where read(bytes, at, 4) == signature { return at }
        return nil
    }
}
