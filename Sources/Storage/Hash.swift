/// FNV-1a, 64-bit: stable across runs and machines (Swift's Hasher is seeded per process), for
/// fingerprints that are stored (the ledger) or compared between processes (MPI ranks).
public func fnv1a(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01B3
    }
    return hash
}
