/// Messages a producer failed between its fatal error and its successor's
/// arrival, kept in memory allocated beforehand (no allocation on the lcore)
/// so that retirement can produce them again. Written by the lcore's delivery
/// callback, read by the retiring thread after the RCU grace period.
///
/// Layout of an entry: payload length (4 bytes), key length (2), opaque (8),
/// key, payload.
final class RescueBuffer {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    private(set) var used = 0
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    static let headerSize = 14

    /// Keeps a message; false when it does not fit (it is then lost, and counted so).
    func keep(
        payload: UnsafeRawPointer?,
        length: Int,
        key: UnsafeRawPointer?,
        keyLength: Int,
        opaque: UnsafeMutableRawPointer?
    ) -> Bool {
        let size = Self.headerSize + keyLength + length
        guard keyLength <= Int(UInt16.max), length <= Int(UInt32.max), used + size <= capacity else { return false }
        let entry = base + used
        entry.storeBytes(of: UInt32(length), toByteOffset: 0, as: UInt32.self)
        entry.storeBytes(of: UInt16(keyLength), toByteOffset: 4, as: UInt16.self)
        entry.storeBytes(of: UInt64(UInt(bitPattern: opaque)), toByteOffset: 6, as: UInt64.self)
        if let key, keyLength > 0 { (entry + Self.headerSize).copyMemory(from: key, byteCount: keyLength) }
        if let payload, length > 0 {
            (entry + Self.headerSize + keyLength).copyMemory(from: payload, byteCount: length)
        }
        used += size
        count += 1
        return true
    }

    /// Visits every kept message, then empties the buffer.
    func drain(
        _ body: (
            _ payload: UnsafeRawPointer, _ length: Int, _ key: UnsafeRawPointer, _ keyLength: Int,
            _ opaque: UnsafeMutableRawPointer?
        ) -> Void
    ) {
        var offset = 0
        while offset < used {
            let entry = base + offset
            let length = Int(entry.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
            let keyLength = Int(entry.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
            let opaque = UnsafeMutableRawPointer(
                bitPattern: UInt(entry.loadUnaligned(fromByteOffset: 6, as: UInt64.self))
            )
            body(
                UnsafeRawPointer(entry + Self.headerSize + keyLength),
                length,
                UnsafeRawPointer(entry + Self.headerSize),
                keyLength,
                opaque
            )
            offset += Self.headerSize + keyLength + length
        }
        used = 0
        count = 0
    }
}
