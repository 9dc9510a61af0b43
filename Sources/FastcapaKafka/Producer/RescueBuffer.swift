import CRdKafka
import Glibc

/// Failed messages kept so that they can be produced again to a successor:
/// those a producer failed between its fatal error and its successor's arrival
/// (written by the lcore's delivery callback, into memory allocated beforehand:
/// no allocation on the lcore), and those a retiring producer fails (written by
/// the retiring thread, which may allocate: the buffer then grows chunk by chunk).
/// The retiring thread replays them, first in, first out, after the RCU grace period.
///
/// Layout of an entry: payload length (4 bytes), key length (2), opaque (8),
/// headers length (2), key, headers, payload. Headers (the message contract's
/// `orig_len`, `port`, `queue`, `probe`, `time_ns`) are kept as name length (1),
/// name, value length (2), value: a message produced again carries them too.
/// Its record timestamp is not kept: librdkafka reports none for a failed
/// message, and under `--record-time capture` the key gives it again.
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

    static let headerSize = 16

    var isEmpty: Bool { count == 0 }

    /// Keeps a message; false when it does not fit (it is then lost, and counted so).
    func keep(
        payload: UnsafeRawPointer?,
        length: Int,
        key: UnsafeRawPointer?,
        keyLength: Int,
        opaque: UnsafeMutableRawPointer?,
        headers: OpaquePointer? = nil
    ) -> Bool {
        let headersLength = Self.encodedLength(headers)
        let size = Self.headerSize + keyLength + headersLength + length
        guard keyLength <= Int(UInt16.max), length <= Int(UInt32.max), headersLength <= Int(UInt16.max) else {
            return false
        }
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
        entry.storeBytes(of: UInt16(headersLength), toByteOffset: 14, as: UInt16.self)
        if let key, keyLength > 0 { (entry + Self.headerSize).copyMemory(from: key, byteCount: keyLength) }
        if let headers { Self.encode(headers, at: entry + Self.headerSize + keyLength) }
        if let payload, length > 0 {
            (entry + Self.headerSize + keyLength + headersLength).copyMemory(from: payload, byteCount: length)
        }
        chunks[last].used += size
        count += 1
        return true
    }

    /// A kept message, as `replay` hands it over (pointers into the buffer, valid during the call).
    struct Message {
        var payload: UnsafeRawPointer
        var length: Int
        var key: UnsafeRawPointer
        var keyLength: Int
        var opaque: UnsafeMutableRawPointer?
        /// The headers, encoded as kept (`decode` reads them).
        var headers: UnsafeRawBufferPointer
    }

    /// Visits the kept messages in order, removing each one `body` accepts; stops
    /// at the first it refuses (which stays, with what follows). Returns true when
    /// the buffer is empty.
    @discardableResult
    func replay(_ body: (Message) -> Bool) -> Bool {
        while readChunk < chunks.count {
            if readOffset >= chunks[readChunk].used {
                readChunk += 1
                readOffset = 0
                continue
            }
            let entry = chunks[readChunk].base + readOffset
            let length = Int(entry.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
            let keyLength = Int(entry.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
            let headersLength = Int(entry.loadUnaligned(fromByteOffset: 14, as: UInt16.self))
            let accepted = body(
                Message(
                    payload: UnsafeRawPointer(entry + Self.headerSize + keyLength + headersLength),
                    length: length,
                    key: UnsafeRawPointer(entry + Self.headerSize),
                    keyLength: keyLength,
                    opaque: UnsafeMutableRawPointer(
                        bitPattern: UInt(entry.loadUnaligned(fromByteOffset: 6, as: UInt64.self))
                    ),
                    headers: UnsafeRawBufferPointer(start: entry + Self.headerSize + keyLength, count: headersLength)
                )
            )
            guard accepted else { return false }
            readOffset += Self.headerSize + keyLength + headersLength + length
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

    /// The bytes `encode` writes for `headers` (0 for none).
    static func encodedLength(_ headers: OpaquePointer?) -> Int {
        var total = 0
        forEach(headers) { name, _, size in total += 3 + name.count + size }
        return total
    }

    /// Writes every header of `headers` at `at`: name length (1), name, value length (2), value.
    static func encode(_ headers: OpaquePointer, at: UnsafeMutableRawPointer) {
        var cursor = at
        forEach(headers) { name, value, size in
            cursor.storeBytes(of: UInt8(name.count), as: UInt8.self)
            if let base = name.baseAddress { (cursor + 1).copyMemory(from: base, byteCount: name.count) }
            cursor += 1 + name.count
            cursor.storeBytes(of: UInt16(size), toByteOffset: 0, as: UInt16.self)
            if let value, size > 0 { (cursor + 2).copyMemory(from: value, byteCount: size) }
            cursor += 2 + size
        }
    }

    /// Calls `body` with each header's name (at most 255 bytes), value and value
    /// length (librdkafka's own memory: nothing is allocated).
    private static func forEach(
        _ headers: OpaquePointer?,
        _ body: (UnsafeRawBufferPointer, UnsafeRawPointer?, Int) -> Void
    ) {
        guard let headers else { return }
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(headers, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            if let name {
                body(UnsafeRawBufferPointer(start: name, count: min(strlen(name), 255)), value, min(size, 4096))
            }
            index += 1
        }
    }

    /// The headers `encode` wrote, as (name, value) pairs for `rd_kafka_header_add`.
    static func decode(
        _ bytes: UnsafeRawBufferPointer,
        _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void
    ) {
        var offset = 0
        while offset < bytes.count {
            let nameLength = Int(bytes[offset])
            let name = UnsafeRawBufferPointer(rebasing: bytes[offset + 1..<offset + 1 + nameLength])
            offset += 1 + nameLength
            let size = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let value = UnsafeRawBufferPointer(rebasing: bytes[offset + 2..<offset + 2 + size])
            offset += 2 + size
            body(name, value)
        }
    }
}
