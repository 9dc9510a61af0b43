import CDPDK
import Glibc

/// What a duplicate window has done since it was created.
package struct DuplicateWindowCounters: Sendable, Equatable {
    /// Frames found to be duplicates.
    package var duplicates: UInt64
    /// Remembered frames pushed out while still inside the window: a sign the
    /// table is too small. A later copy of one of them may be delivered (the
    /// table fails open: it forgets, it never invents a duplicate).
    package var evictedInWindow: UInt64

    package init(duplicates: UInt64 = 0, evictedInWindow: UInt64 = 0) {
        self.duplicates = duplicates
        self.evictedInWindow = evictedInWindow
    }
}

/// One receive queue's recent frames, to drop duplicates: a frame is a
/// duplicate when an earlier frame with the same captured bytes and the same
/// lengths was captured at most `windowMicros` before it. Every frame is
/// remembered, duplicates too. A remembered capture time later than the
/// frame's counts as 0 µs before it.
///
/// A set-associative table: each bucket is one 64-byte cache line of four
/// slots, a slot a frame's 64-bit digest and its latest capture time; the
/// digest's low bits pick the bucket, so a frame touches one cache line and
/// there is no deletion pass. A frame whose digest is in its bucket within the
/// window is a duplicate, and the slot's time moves up to the frame's. Any
/// other frame takes an empty slot, else its bucket's oldest (expired slots are
/// the oldest); pushing out a slot still inside the window counts
/// `evictedInWindow`.
///
/// The digest is a keyed multiply-mix hash (64 × 64 → 128-bit products folded
/// to 64 bits) of the captured bytes, the captured length and the original
/// length, with a random key per table, so traffic cannot aim for collisions
/// without knowing it. Two different frames share a digest with probability
/// about 2⁻⁶⁴ each, so a frame collides with one of `n` remembered frames with
/// probability about n · 2⁻⁶⁴ (10⁶ remembered frames: about 5 · 10⁻¹⁴ per frame).
/// A collision drops a unique frame and counts it as a duplicate.
///
/// Memory: 16 bytes per entry. A window of W µs at R frames per µs remembers
/// W · R frames; with `entries` at least 2 · W · R (rounded up to a power of two),
/// a full bucket is rare, so that is 32 · R bytes per µs of window: 10 GbE of
/// 64-byte frames (14.88 frames per µs) takes about 476 bytes per µs, 476 KiB
/// for a 1 ms window (32 K entries at 2 · W · R, 512 KiB rounded).
///
/// Not thread-safe: it belongs to one receive lcore at a time. `isDuplicate`
/// allocates nothing and takes no locks.
package final class DuplicateWindow: @unchecked Sendable {
    /// A remembered frame: its digest (0: an empty slot) and latest capture time.
    struct Slot {
        var digest: UInt64
        var micros: UInt64
    }

    /// Slots per bucket: 4 of 16 bytes fill one 64-byte cache line.
    static let slotsPerBucket = 4

    /// The fewest entries: one bucket.
    package static let minimumEntries = slotsPerBucket
    /// The most entries (16 GiB).
    package static let maximumEntries = 1 << 30

    /// Frames the table remembers at most: the size asked for, rounded up to a power of two.
    package let entries: Int
    package private(set) var counters = DuplicateWindowCounters()

    private var slots: UnsafeMutablePointer<Slot>?
    /// `digest & bucketMask` is a bucket's index.
    private let bucketMask: UInt64
    private let key: DuplicateDigest.Key

    /// A table of at least `entries` frames, its memory on NUMA `socket` (-1
    /// for any), its digest keyed at random. `queue` names it in errors.
    package convenience init(entries: Int, socket: Int32, queue: Int) throws(CaptureError) {
        var random = SystemRandomNumberGenerator()
        try self.init(entries: entries, socket: socket, queue: queue, keySeed: random.next())
    }

    /// The same with the digest's key drawn from `keySeed`, so that tests see the same buckets every run.
    package init(entries: Int, socket: Int32, queue: Int, keySeed: UInt64) throws(CaptureError) {
        guard entries >= Self.minimumEntries && entries <= Self.maximumEntries else {
            throw CaptureError(
                "duplicate table size \(entries) is out of range",
                fix: "Use --dedup-table-size between \(Self.minimumEntries) and \(Self.maximumEntries)"
            )
        }
        let rounded = Self.roundedEntries(entries)
        let bytes = Self.approximateBytes(entries: rounded)
        let memory = rte_zmalloc_socket("duplicate-window", bytes, 64, socket)
        guard let memory else {
            let mebibytes = (bytes + (1 << 20) - 1) >> 20
            let place = socket < 0 ? "" : " on socket \(socket)"
            throw CaptureError(
                "cannot allocate the duplicate table of receive queue \(queue) (\(bytes) bytes)",
                fix: "A duplicate table of \(rounded) entries takes \(mebibytes) MiB of DPDK memory\(place) per "
                    + "receive queue: lower --dedup-table-size, or give EAL more memory (-m, --socket-mem or hugepages)"
            )
        }
        self.entries = rounded
        slots = memory.bindMemory(to: Slot.self, capacity: rounded)
        bucketMask = UInt64(rounded / Self.slotsPerBucket - 1)
        key = DuplicateDigest.Key(seed: keySeed)
    }

    deinit { release() }

    /// Frees the table now (`deinit` does otherwise); `isDuplicate` must not be called after.
    package func release() {
        if let slots { rte_free(slots) }
        slots = nil
    }

    /// The entries a table asked for `entries` (within range) holds: the next power of two.
    package static func roundedEntries(_ entries: Int) -> Int {
        1 << (Int.bitWidth - (entries - 1).leadingZeroBitCount)
    }

    /// DPDK memory a table of `entries` (a power of two) takes: 16 bytes each.
    package static func approximateBytes(entries: Int) -> Int {
        entries * MemoryLayout<Slot>.stride
    }

    /// Remembers the frame and says whether it is a duplicate (an earlier remembered
    /// frame with equal bytes and lengths at most `windowMicros` before `micros`).
    /// `packet` is a `struct rte_mbuf *`, its segments' bytes, `pkt_len` of them,
    /// digested in place; its original length is its `pkt_len`.
    @inline(__always)
    package func isDuplicate(_ packet: OpaquePointer, micros: UInt64, windowMicros: UInt64) -> Bool {
        remember(digest(packet), micros: micros, windowMicros: windowMicros)
    }

    /// The same for bytes in memory, captured from a frame of `originalLength` bytes.
    @inline(__always)
    package func isDuplicate(
        bytes: UnsafeRawBufferPointer,
        originalLength: Int,
        micros: UInt64,
        windowMicros: UInt64
    ) -> Bool {
        remember(digest(bytes: bytes, originalLength: originalLength), micros: micros, windowMicros: windowMicros)
    }

    /// The frame's digest under this table's key (never 0, which marks an empty slot).
    package func digest(_ packet: OpaquePointer) -> UInt64 {
        let total = Int(CDPDK_rte_mbuf_pkt_len(packet))
        var hasher = DuplicateDigest(key: key)
        var segment: OpaquePointer? = packet
        var remaining = total
        while remaining > 0, let current = segment {
            let count = min(Int(CDPDK_rte_mbuf_data_len(current)), remaining)
            hasher.update(UnsafeRawPointer(CDPDK_rte_pktmbuf_mtod(current)), count: count)
            remaining -= count
            segment = CDPDK_rte_mbuf_next(current)
        }
        return hasher.finish(capturedLength: total - remaining, originalLength: total)
    }

    /// The digest of `bytes` captured from a frame of `originalLength` bytes.
    package func digest(bytes: UnsafeRawBufferPointer, originalLength: Int) -> UInt64 {
        var hasher = DuplicateDigest(key: key)
        if let base = bytes.baseAddress { hasher.update(base, count: bytes.count) }
        return hasher.finish(capturedLength: bytes.count, originalLength: originalLength)
    }

    @inline(__always)
    private func remember(_ digest: UInt64, micros: UInt64, windowMicros: UInt64) -> Bool {
        guard let slots else { preconditionFailure("DuplicateWindow.isDuplicate after release") }
        let bucket = slots + Int(truncatingIfNeeded: digest & bucketMask) &* Self.slotsPerBucket
        // The slot to take on a miss: the first empty one, else the oldest.
        var victim = 0
        var victimEmpty = false
        var victimMicros = UInt64.max
        for index in 0..<Self.slotsPerBucket {
            let slot = bucket[index]
            if slot.digest == digest && (slot.micros >= micros || micros - slot.micros <= windowMicros) {
                if micros > slot.micros { bucket[index].micros = micros }
                counters.duplicates &+= 1
                return true
            }
            if slot.digest == 0 {
                if !victimEmpty {
                    victim = index
                    victimEmpty = true
                }
            } else if !victimEmpty && slot.micros < victimMicros {
                victim = index
                victimMicros = slot.micros
            }
        }
        if !victimEmpty && (victimMicros >= micros || micros - victimMicros <= windowMicros) {
            counters.evictedInWindow &+= 1
        }
        bucket[victim] = Slot(digest: digest, micros: micros)
        return false
    }
}

/// A keyed 64-bit hash of a byte stream fed in pieces (an mbuf's segments),
/// equal however the stream is split: blocks of 32 bytes go to two lanes (two
/// independent multiply chains, so long frames overlap their products), each
/// taking 16 bytes a step as two 8-byte words folded by one 128-bit product;
/// the last words, 8 bytes a step, and the zero-filled tail go to one chain,
/// which ends mixing in both lengths. Only a block that straddles two segments
/// is gathered, in a 32-byte buffer on the stack.
struct DuplicateDigest {
    /// The per-table random key.
    struct Key {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

        /// Six words drawn from `seed` by SplitMix64.
        init(seed: UInt64) {
            var state = seed
            func next() -> UInt64 {
                state &+= 0x9E37_79B9_7F4A_7C15
                var mixed = state
                mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
                mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
                return mixed ^ (mixed >> 31)
            }
            words = (next(), next(), next(), next(), next(), next())
        }
    }

    private let key: Key
    private var first: UInt64
    private var second: UInt64
    /// Bytes of a block not yet complete.
    private var pending: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var pendingCount = 0

    init(key: Key) {
        self.key = key
        first = key.words.4
        second = key.words.5
    }

    /// The 128-bit product of `a` and `b`, its halves folded together.
    @inline(__always)
    static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    @inline(__always)
    static func word(_ pointer: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always)
    private mutating func block(_ pointer: UnsafeRawPointer) {
        first = Self.fold(Self.word(pointer, 0) ^ key.words.0, Self.word(pointer, 8) ^ first)
        second = Self.fold(Self.word(pointer, 16) ^ key.words.1, Self.word(pointer, 24) ^ second)
    }

    @inline(__always)
    mutating func update(_ start: UnsafeRawPointer, count: Int) {
        var pointer = start
        var remaining = count
        if pendingCount > 0 {
            let taken = min(32 - pendingCount, remaining)
            let filled = pendingCount
            withUnsafeMutableBytes(of: &pending) { pending in
                (pending.baseAddress! + filled).copyMemory(from: pointer, byteCount: taken)
            }
            pendingCount += taken
            pointer += taken
            remaining -= taken
            guard pendingCount == 32 else { return }
            let gathered = pending
            withUnsafeBytes(of: gathered) { block($0.baseAddress!) }
            pendingCount = 0
        }
        while remaining >= 32 {
            block(pointer)
            pointer += 32
            remaining -= 32
        }
        if remaining > 0 {
            withUnsafeMutableBytes(of: &pending) { pending in
                pending.baseAddress!.copyMemory(from: pointer, byteCount: remaining)
            }
            pendingCount = remaining
        }
    }

    @inline(__always)
    mutating func finish(capturedLength: Int, originalLength: Int) -> UInt64 {
        var hash = Self.fold(first ^ key.words.2, second ^ key.words.3)
        let count = pendingCount
        let key = key
        withUnsafeMutableBytes(of: &pending) { pending in
            let base = UnsafeRawPointer(pending.baseAddress!)
            var offset = 0
            while count - offset >= 8 {
                hash = Self.fold(Self.word(base, offset) ^ key.words.0, hash ^ key.words.1)
                offset += 8
            }
            if offset < count {
                // The tail, zero-filled to a word; the captured length below tells tails apart.
                (pending.baseAddress! + count).initializeMemory(as: UInt8.self, repeating: 0, count: offset + 8 - count)
                hash = Self.fold(Self.word(base, offset) ^ key.words.2, hash ^ key.words.3)
            }
        }
        let lengths = UInt64(truncatingIfNeeded: capturedLength) << 32 ^ UInt64(truncatingIfNeeded: originalLength)
        hash = Self.fold(hash ^ key.words.4, lengths ^ key.words.5)
        hash ^= hash >> 29
        return hash == 0 ? 1 : hash
    }
}
