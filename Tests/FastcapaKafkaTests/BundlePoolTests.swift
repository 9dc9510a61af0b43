import CFastcapaShared
import FastcapaKafka
import Foundation
import Testing

/// The bundle pool's free-buffer ring (`fastcapa_index_ring`, `BundlePool`):
/// bounded, in order, and under concurrent give-back nothing lost or doubled.
@Suite struct BundlePoolTests {
    @Test func takesEveryBufferOnceThenNone() throws {
        let pool = try BundlePool(count: 5, bufferSize: 4096)
        var seen = Set<UInt32>()
        var buffers = Set<UnsafeMutableRawPointer>()
        while let bundle = pool.take() {
            #expect(seen.insert(bundle.pointee.index).inserted)
            let buffer = pool.buffer(bundle)
            buffers.insert(buffer)
            // The whole buffer is writable: the mapping reserves count × size.
            buffer.storeBytes(of: 0xAB, toByteOffset: 4095, as: UInt8.self)
        }
        #expect(seen == Set(0..<5))
        #expect(buffers.count == 5)
        #expect(pool.freeCount() == 0)
    }

    @Test func aTakenBundleIsEmptied() throws {
        let pool = try BundlePool(count: 1, bufferSize: 64)
        let bundle = try #require(pool.take())
        bundle.pointee.packets = 7
        bundle.pointee.bytes = 100
        bundle.pointee.hint = 3
        pool.give(bundle)
        let again = try #require(pool.take())
        #expect(again == bundle)
        #expect(again.pointee.packets == 0 && again.pointee.bytes == 0 && again.pointee.hint == 0)
    }

    @Test func theRingRefusesWhenFullAndIsFIFO() {
        let cells = UnsafeMutablePointer<fastcapa_index_cell>.allocate(capacity: 4)
        let ring = UnsafeMutablePointer<fastcapa_index_ring>.allocate(capacity: 1)
        defer {
            cells.deallocate()
            ring.deallocate()
        }
        fastcapa_index_ring_init(ring, cells, 4)
        var value: UInt64 = 0
        #expect(!fastcapa_index_ring_pop(ring, &value))
        for index in 0..<4 { #expect(fastcapa_index_ring_push(ring, UInt64(10 + index))) }
        #expect(!fastcapa_index_ring_push(ring, 99))
        for index in 0..<4 {
            #expect(fastcapa_index_ring_pop(ring, &value))
            #expect(value == UInt64(10 + index))
        }
        #expect(!fastcapa_index_ring_pop(ring, &value))
    }

    /// Enough buffers for 131,072 packets in flight, within 1 GiB, at least 256.
    @Test func poolSizeFollowsTheBundlesAndTheBufferSize() {
        #expect(BundlePool.bufferCount(bufferSize: 524_288, packets: 256) == 512)
        #expect(BundlePool.bufferCount(bufferSize: 524_288, packets: 64) == 2048)
        #expect(BundlePool.bufferCount(bufferSize: 524_288, packets: 16) == 2048, "1 GiB at most")
        #expect(BundlePool.bufferCount(bufferSize: 65_536, packets: 16) == 8192)
        #expect(BundlePool.bufferCount(bufferSize: 65_536, packets: 7) == 16_384, "1 GiB at most")
        #expect(BundlePool.bufferCount(bufferSize: 1 << 20, packets: 65_535) == 256)
        #expect(BundlePool.bufferCount(bufferSize: 4 << 20, packets: 16) == 256)
    }

    /// One taker (the lcore) and two givers (the lcore's poll and a report
    /// thread): every buffer is taken and given back many times; at the end each
    /// index is free exactly once.
    @Test func concurrentGiveBackLosesAndDoublesNothing() async throws {
        let count = 64
        let rounds = 200_000
        let pool = try BundlePool(count: count, bufferSize: 64)
        let handOff = [HandOff(), HandOff()]
        let taker = Thread {
            var given = 0
            while given < rounds {
                guard let bundle = pool.take() else { continue }
                bundle.pointee.packets = 1
                handOff[given % 2].push(bundle)
                given += 1
            }
            handOff[0].finish()
            handOff[1].finish()
        }
        let done = DispatchGroup()
        var givers: [Thread] = []
        for lane in handOff {
            done.enter()
            givers.append(
                Thread {
                    while let bundle = lane.pop() {
                        #expect(bundle.pointee.packets == 1)
                        bundle.pointee.packets = 0
                        pool.give(bundle)
                    }
                    done.leave()
                }
            )
        }
        for giver in givers { giver.start() }
        taker.start()
        done.wait()
        var free: [UInt32] = []
        while let bundle = pool.take() { free.append(bundle.pointee.index) }
        #expect(free.count == count)
        #expect(Set(free) == Set(0..<UInt32(count)))
    }

    /// A lane from the taker to one giver.
    final class HandOff: @unchecked Sendable {
        private let condition = NSCondition()
        private var items: [UnsafeMutablePointer<fastcapa_bundle>] = []
        private var finished = false

        func push(_ bundle: UnsafeMutablePointer<fastcapa_bundle>) {
            condition.lock()
            items.append(bundle)
            condition.signal()
            condition.unlock()
        }

        func finish() {
            condition.lock()
            finished = true
            condition.broadcast()
            condition.unlock()
        }

        func pop() -> UnsafeMutablePointer<fastcapa_bundle>? {
            condition.lock()
            defer { condition.unlock() }
            while items.isEmpty && !finished { condition.wait() }
            return items.isEmpty ? nil : items.removeFirst()
        }
    }
}
