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
/// Memory: 16 bytes per entry. A window of W µs at R frames per µs holds
/// W · R frames inside it, spread over the buckets at random, so a bucket is
/// sometimes asked for a fifth: with entries = k · W · R, the share of frames
/// that find their bucket full of frames still inside the window (and push out
/// the oldest, counted in `evictedInWindow`) is about 14 % for k = 2, 1.8 % for
/// k = 4 and 0.18 % for k = 8 (fastcapa-microbench; a Poisson tail). Such a frame
/// is only missed if a copy of it comes later still inside the window. Sizing
/// with k = 8 takes 128 · R bytes per µs of window: 10 GbE of 64-byte frames
/// (14.88 frames per µs) about 1.9 KB per µs, 1.9 MB for a 1 ms window
/// (119 040 entries, rounded up to 128 Ki: 2 MiB).
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
    /// What the table has done; still readable after `release`.
    package var counters: DuplicateWindowCounters { tallies.pointee }

    private var slots: UnsafeMutablePointer<Slot>?
    /// The counters, behind a pointer: a stored property of a class is checked
    /// for exclusive access at run time (a runtime call per increment).
    private let tallies: UnsafeMutablePointer<DuplicateWindowCounters>
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
        tallies = .allocate(capacity: 1)
        tallies.initialize(to: DuplicateWindowCounters())
    }

    deinit {
        release()
        tallies.deallocate()
    }

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

    /// Starts loading the bucket of `digest` into the cache: a burst's digests are
    /// taken and their buckets fetched before `isDuplicate(digest:)` reads them.
    @inline(__always)
    package func prefetch(_ digest: UInt64) {
        guard let slots else { return }
        CDPDK_rte_prefetch0(slots + Int(truncatingIfNeeded: digest & bucketMask) &* Self.slotsPerBucket)
    }

    /// `isDuplicate` for a frame whose `digest` was taken already.
    @inline(__always)
    package func isDuplicate(digest: UInt64, micros: UInt64, windowMicros: UInt64) -> Bool {
        remember(digest, micros: micros, windowMicros: windowMicros)
    }

    /// The frame's digest under this table's key (never 0, which marks an empty slot).
    package func digest(_ packet: OpaquePointer) -> UInt64 {
        let total = Int(CDPDK_rte_mbuf_pkt_len(packet))
        var hasher = DuplicateDigest(key: key)
        var segment = packet
        var remaining = total
        while true {
            let count = min(Int(CDPDK_rte_mbuf_data_len(segment)), remaining)
            remaining -= count
            guard remaining > 0, let next = CDPDK_rte_mbuf_next(segment) else {
                // The last segment (or the last with bytes of pkt_len): no copy of its tail.
                return hasher.finish(
                    UnsafeRawPointer(CDPDK_rte_pktmbuf_mtod(segment)),
                    count: count,
                    capturedLength: total - remaining,
                    originalLength: total
                )
            }
            hasher.update(UnsafeRawPointer(CDPDK_rte_pktmbuf_mtod(segment)), count: count)
            segment = next
        }
    }

    /// The digest of `bytes` captured from a frame of `originalLength` bytes.
    package func digest(bytes: UnsafeRawBufferPointer, originalLength: Int) -> UInt64 {
        var hasher = DuplicateDigest(key: key)
        // An empty buffer may have no address; any address will do for no bytes.
        let base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!
        return hasher.finish(base, count: bytes.count, capturedLength: bytes.count, originalLength: originalLength)
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
                tallies.pointee.duplicates &+= 1
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
            tallies.pointee.evictedInWindow &+= 1
        }
        bucket[victim] = Slot(digest: digest, micros: micros)
        return false
    }
}

/// A keyed 64-bit hash of a byte stream fed in pieces (an mbuf's segments),
/// equal however the stream is split. Blocks of 64 bytes go to four lanes, four
/// independent multiply chains so that long frames overlap their products; a
/// lane takes 16 bytes a step, two 8-byte words folded by one 128-bit product.
/// The last partial block is zero-filled to a whole one (the captured length,
/// mixed in at the end, tells the fill from data). A frame of at most 64 bytes
/// thus costs three products deep: its block, the lanes joined, the lengths.
/// Only a block that straddles two segments is gathered, in 64 bytes on the stack.
struct DuplicateDigest {
    /// The per-table random key: a word per lane for its data, a lane's start,
    /// a word per lane for joining them.
    struct Key {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

        /// Twelve words drawn from `seed` by SplitMix64.
        init(seed: UInt64) {
            var state = seed
            func next() -> UInt64 {
                state &+= 0x9E37_79B9_7F4A_7C15
                var mixed = state
                mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
                mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
                return mixed ^ (mixed >> 31)
            }
            words = (next(), next(), next(), next(), next(), next(), next(), next(), next(), next(), next(), next())
        }
    }

    static let blockSize = 64

    private let key: Key
    private var lanes: (UInt64, UInt64, UInt64, UInt64)
    /// Bytes of a block not yet complete.
    private var pending: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private var pendingCount = 0

    init(key: Key) {
        self.key = key
        lanes = (key.words.4, key.words.5, key.words.6, key.words.7)
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
        lanes.0 = Self.fold(Self.word(pointer, 0) ^ key.words.0, Self.word(pointer, 8) ^ lanes.0)
        lanes.1 = Self.fold(Self.word(pointer, 16) ^ key.words.1, Self.word(pointer, 24) ^ lanes.1)
        lanes.2 = Self.fold(Self.word(pointer, 32) ^ key.words.2, Self.word(pointer, 40) ^ lanes.2)
        lanes.3 = Self.fold(Self.word(pointer, 48) ^ key.words.3, Self.word(pointer, 56) ^ lanes.3)
    }

    @inline(__always)
    mutating func update(_ start: UnsafeRawPointer, count: Int) {
        var pointer = start
        var remaining = count
        if pendingCount > 0 {
            let taken = min(Self.blockSize - pendingCount, remaining)
            let filled = pendingCount
            withUnsafeMutableBytes(of: &pending) { pending in
                (pending.baseAddress! + filled).copyMemory(from: pointer, byteCount: taken)
            }
            pendingCount += taken
            pointer += taken
            remaining -= taken
            guard pendingCount == Self.blockSize else { return }
            let gathered = pending
            withUnsafeBytes(of: gathered) { block($0.baseAddress!) }
            pendingCount = 0
        }
        while remaining >= Self.blockSize {
            block(pointer)
            pointer += Self.blockSize
            remaining -= Self.blockSize
        }
        if remaining > 0 {
            withUnsafeMutableBytes(of: &pending) { pending in
                pending.baseAddress!.copyMemory(from: pointer, byteCount: remaining)
            }
            pendingCount = remaining
        }
    }

    /// The last `count` bytes of the stream (read in place, never past their
    /// end), then the digest with both lengths mixed in.
    @inline(__always)
    mutating func finish(
        _ start: UnsafeRawPointer,
        count: Int,
        capturedLength: Int,
        originalLength: Int
    ) -> UInt64 {
        if pendingCount > 0 {
            update(start, count: count)
            let filled = pendingCount
            let gathered = pending
            withUnsafeBytes(of: gathered) { lastBlock($0.baseAddress!, count: filled) }
        } else {
            var pointer = start
            var remaining = count
            while remaining >= Self.blockSize {
                block(pointer)
                pointer += Self.blockSize
                remaining -= Self.blockSize
            }
            lastBlock(pointer, count: remaining)
        }
        var hash =
            Self.fold(lanes.0 ^ key.words.8, lanes.1 ^ key.words.9)
            ^ Self.fold(lanes.2 ^ key.words.10, lanes.3 ^ key.words.11)
        let lengths = UInt64(truncatingIfNeeded: capturedLength) << 32 ^ UInt64(truncatingIfNeeded: originalLength)
        hash = Self.fold(hash ^ key.words.4, lengths ^ key.words.5)
        hash ^= hash >> 29
        return hash == 0 ? 1 : hash
    }

    /// A block of the `count` (less than 64) bytes at `pointer`, zero-filled,
    /// through the lanes; nothing for no bytes.
    @inline(__always)
    private mutating func lastBlock(_ pointer: UnsafeRawPointer, count: Int) {
        guard count > 0 else { return }
        @inline(__always)
        func word(_ index: Int) -> UInt64 {
            let offset = index &* 8
            if offset &+ 8 <= count { return Self.word(pointer, offset) }
            if offset >= count { return 0 }
            return Self.partialWord(pointer + offset, count: count &- offset)
        }
        lanes.0 = Self.fold(word(0) ^ key.words.0, word(1) ^ lanes.0)
        lanes.1 = Self.fold(word(2) ^ key.words.1, word(3) ^ lanes.1)
        lanes.2 = Self.fold(word(4) ^ key.words.2, word(5) ^ lanes.2)
        lanes.3 = Self.fold(word(6) ^ key.words.3, word(7) ^ lanes.3)
    }

    /// The `count` (1 to 7) bytes at `pointer` as a little-endian word, zero-filled,
    /// reading no byte past them: two overlapping loads put each byte in its place.
    @inline(__always)
    static func partialWord(_ pointer: UnsafeRawPointer, count: Int) -> UInt64 {
        if count >= 4 {
            let low = UInt64(UInt32(littleEndian: pointer.loadUnaligned(as: UInt32.self)))
            let high = UInt64(UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)))
            return low | high << UInt64((count &- 4) &* 8)
        }
        let first = UInt64(pointer.load(as: UInt8.self))
        let middle = UInt64(pointer.load(fromByteOffset: count >> 1, as: UInt8.self))
        let last = UInt64(pointer.load(fromByteOffset: count &- 1, as: UInt8.self))
        return first | middle << UInt64((count >> 1) &* 8) | last << UInt64((count &- 1) &* 8)
    }
}
