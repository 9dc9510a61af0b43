/// Failed messages kept so that they can be produced again to a successor:
/// those a producer failed between its fatal error and its successor's arrival
/// (written by the lcore's delivery callback, into memory allocated beforehand:
/// no allocation on the lcore), and those a retiring producer fails (written by
/// the retiring thread, which may allocate: the buffer then grows chunk by chunk).
/// The retiring thread replays them, first in, first out, after the RCU grace period.
///
/// Layout of an entry: payload length (4 bytes), key length (2), opaque (8),
/// key, payload.
final class RescueBuffer {
    private struct Chunk {
        let base: UnsafeMutableRawPointer
        let capacity: Int
        var used = 0
    }

    private var chunks: [Chunk]
    private let chunkCapacity: Int
    /// Off the lcores (retirement): a full buffer takes another chunk instead of refusing.
    var growable = false
    private var readChunk = 0
    private var readOffset = 0
    private(set) var count = 0

    init(capacity: Int) {
        chunkCapacity = capacity
        chunks = [Chunk(base: .allocate(byteCount: capacity, alignment: 8), capacity: capacity)]
    }

    deinit {
        for chunk in chunks { chunk.base.deallocate() }
    }

    static let headerSize = 14

    var isEmpty: Bool { count == 0 }

    /// Keeps a message; false when it does not fit (it is then lost, and counted so).
    func keep(
        payload: UnsafeRawPointer?,
        length: Int,
        key: UnsafeRawPointer?,
        keyLength: Int,
        opaque: UnsafeMutableRawPointer?
    ) -> Bool {
        let size = Self.headerSize + keyLength + length
        guard keyLength <= Int(UInt16.max), length <= Int(UInt32.max) else { return false }
        var last = chunks.count - 1
        if chunks[last].used + size > chunks[last].capacity {
            guard growable else { return false }
            let capacity = max(chunkCapacity, size)
            chunks.append(Chunk(base: .allocate(byteCount: capacity, alignment: 8), capacity: capacity))
            last += 1
        }
        let entry = chunks[last].base + chunks[last].used
        entry.storeBytes(of: UInt32(length), toByteOffset: 0, as: UInt32.self)
        entry.storeBytes(of: UInt16(keyLength), toByteOffset: 4, as: UInt16.self)
        entry.storeBytes(of: UInt64(UInt(bitPattern: opaque)), toByteOffset: 6, as: UInt64.self)
        if let key, keyLength > 0 { (entry + Self.headerSize).copyMemory(from: key, byteCount: keyLength) }
        if let payload, length > 0 {
            (entry + Self.headerSize + keyLength).copyMemory(from: payload, byteCount: length)
        }
        chunks[last].used += size
        count += 1
        return true
    }

    /// Visits the kept messages in order, removing each one `body` accepts; stops
    /// at the first it refuses (which stays, with what follows). Returns true when
    /// the buffer is empty.
    @discardableResult
    func replay(
        _ body: (
            _ payload: UnsafeRawPointer, _ length: Int, _ key: UnsafeRawPointer, _ keyLength: Int,
            _ opaque: UnsafeMutableRawPointer?
        ) -> Bool
    ) -> Bool {
        while readChunk < chunks.count {
            if readOffset >= chunks[readChunk].used {
                readChunk += 1
                readOffset = 0
                continue
            }
            let entry = chunks[readChunk].base + readOffset
            let length = Int(entry.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
            let keyLength = Int(entry.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
            let opaque = UnsafeMutableRawPointer(
                bitPattern: UInt(entry.loadUnaligned(fromByteOffset: 6, as: UInt64.self))
            )
            let accepted = body(
                UnsafeRawPointer(entry + Self.headerSize + keyLength),
                length,
                UnsafeRawPointer(entry + Self.headerSize),
                keyLength,
                opaque
            )
            guard accepted else { return false }
            readOffset += Self.headerSize + keyLength + length
            count -= 1
        }
        reset()
        return true
    }

    /// Empties the buffer; returns how many messages it held.
    @discardableResult
    func discardAll() -> Int {
        let discarded = count
        reset()
        return discarded
    }

    /// Back to one empty chunk (the preallocated one, kept for the lcore).
    private func reset() {
        for chunk in chunks.dropFirst() { chunk.base.deallocate() }
        chunks.removeSubrange(1...)
        chunks[0].used = 0
        readChunk = 0
        readOffset = 0
        count = 0
    }
}
