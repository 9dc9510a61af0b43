import CFastcapaShared
import Glibc

/// A transmit worker's bundle buffers (`--bundle-packets`), made at start: a
/// value is built in one of them on the lcore, sent by librdkafka without a
/// copy, and handed back by whoever serves its final delivery report.
///
/// The buffers are one anonymous private mapping reserved with
/// `MAP_NORESERVE`: pages never written cost no memory, so a large pool costs
/// what the traffic touches. The descriptors and the free-index ring are the C
/// structures of `fastcapa_shared.h`, so that librdkafka's callbacks reach them
/// through the producer context alone.
package final class BundlePool: @unchecked Sendable {
    /// The pool as the C side sees it.
    package let pool: UnsafeMutablePointer<fastcapa_bundle_pool>
    private let mapping: UnsafeMutableRawPointer
    private let mappingLength: Int
    private let cells: UnsafeMutablePointer<fastcapa_index_cell>
    private let bundles: UnsafeMutablePointer<fastcapa_bundle>

    /// Packets a worker's bundles may hold at once, sent or waiting for their
    /// delivery reports: librdkafka holds them for its own linger and a round
    /// trip, and small bundles must not run out of buffers first.
    package static let packetsInFlight = 131_072
    /// The most a pool reserves: buffers are touched as bundles fill them, and
    /// every buffer cycles through the pool, so this bounds the resident memory.
    package static let maxReservedBytes = 1 << 30

    /// How many buffers of `bufferSize` a worker's pool holds for bundles of up
    /// to `packets`: enough for `packetsInFlight` packets, within
    /// `maxReservedBytes`, and at least 256.
    package static func bufferCount(bufferSize: Int, packets: Int) -> Int {
        let wanted = (packetsInFlight + max(packets, 1) - 1) / max(packets, 1)
        return max(256, min(wanted, maxReservedBytes / max(bufferSize, 1)))
    }

    /// A pool of `count` free buffers of `bufferSize` bytes.
    package init(count: Int, bufferSize: Int) throws {
        precondition(count > 0 && bufferSize > 0, "a bundle pool holds at least one buffer of at least one byte")
        mappingLength = count * bufferSize
        let mapped = mmap(
            nil,
            mappingLength,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
            -1,
            0
        )
        guard let mapped, mapped != MAP_FAILED else {
            throw KafkaError(
                message:
                    "cannot reserve \(mappingLength) bytes for \(count) bundle buffers of \(bufferSize) bytes (errno \(errno)): lower --bundle-bytes"
            )
        }
        mapping = mapped
        var capacity = 1
        while capacity < count { capacity <<= 1 }
        cells = .allocate(capacity: capacity)
        bundles = .allocate(capacity: count)
        for index in 0..<count {
            bundles[index] = fastcapa_bundle(index: UInt32(index), packets: 0, bytes: 0, hint: 0, spare: 0)
        }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, MemoryLayout<fastcapa_bundle_pool>.stride) == 0, let raw else {
            fatalError("out of memory for a bundle pool")
        }
        memset(raw, 0, MemoryLayout<fastcapa_bundle_pool>.stride)
        pool = raw.bindMemory(to: fastcapa_bundle_pool.self, capacity: 1)
        pool.pointee.buffers = mapped.assumingMemoryBound(to: UInt8.self)
        pool.pointee.bundles = bundles
        pool.pointee.buffer_size = UInt64(bufferSize)
        pool.pointee.count = UInt64(count)
        fastcapa_index_ring_init(&pool.pointee.free, cells, UInt64(capacity))
        for index in 0..<count { _ = fastcapa_index_ring_push(&pool.pointee.free, UInt64(index)) }
    }

    deinit {
        munmap(mapping, mappingLength)
        cells.deallocate()
        bundles.deallocate()
        free(pool)
    }

    package var count: Int { Int(pool.pointee.count) }
    package var bufferSize: Int { Int(pool.pointee.buffer_size) }

    /// A free bundle, or nil when every buffer is taken.
    @inlinable package func take() -> UnsafeMutablePointer<fastcapa_bundle>? { fastcapa_bundle_take(pool) }

    /// Hands a bundle's buffer back.
    @inlinable package func give(_ bundle: UnsafeMutablePointer<fastcapa_bundle>) { fastcapa_bundle_give(pool, bundle) }

    /// The buffer `bundle`'s value is built in.
    @inlinable package func buffer(_ bundle: UnsafeMutablePointer<fastcapa_bundle>) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(fastcapa_bundle_buffer(pool, bundle)!)
    }

    /// Free buffers now (counts them off the ring: tests and the end of a run, not the lcore).
    package func freeCount() -> Int {
        var taken: [UInt64] = []
        var index: UInt64 = 0
        while fastcapa_index_ring_pop(&pool.pointee.free, &index) { taken.append(index) }
        for index in taken { _ = fastcapa_index_ring_push(&pool.pointee.free, index) }
        return taken.count
    }
}
