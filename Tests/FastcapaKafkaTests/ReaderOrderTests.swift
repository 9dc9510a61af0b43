import FastcapaKafka
import Testing

/// The query side's two algorithms, on data built here: the seek's binary
/// search over offsets by key, and the capture-time merge of partitions.
@Suite struct ReaderOrderTests {
    /// Keys 0, 10, 20, ... with a bounded disorder: each key may fall up to
    /// `disorder` below the largest before it.
    static func keys(count: Int, disorder: UInt64, seed: UInt64) -> [UInt64] {
        var state = seed
        return (0..<count).map { index in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let back = disorder == 0 ? 0 : (state >> 33) % (disorder + 1)
            return UInt64(index) * 10 + 1_000_000 - back
        }
    }

    @Test(arguments: [UInt64(0), 5, 50, 500])
    func theSeekNeverSkipsAKeyOfTheWindowAndFetchesLogarithmically(disorder: UInt64) {
        let keys = Self.keys(count: 100_000, disorder: disorder, seed: disorder + 1)
        for since in [UInt64(0), 1_000_000, 1_250_003, 1_500_000, 1_999_990, 3_000_000] {
            var probes = 0
            let found = OffsetSeek.firstOffset(low: 0, high: Int64(keys.count), target: since &- min(since, disorder)) {
                offset in
                probes += 1
                return offset < keys.count ? (offset, keys[Int(offset)]) : nil
            }
            #expect(found.probes == probes)
            #expect(probes <= 18, "log2(100000) + 1 fetches")
            // Nothing before the offset found is at or after --since.
            let skipped = keys[..<Int(found.offset)]
            #expect(skipped.allSatisfy { $0 < since }, "since \(since), disorder \(disorder)")
            // And the seek saves the read: it lands at most the slack's worth before the first key of the window.
            if let first = keys.firstIndex(where: { $0 >= since }) {
                #expect(Int(found.offset) <= first)
                #expect(first - Int(found.offset) <= Int(disorder) / 10 * 2 + 2)
            }
        }
    }

    /// Keys of a bursty link: mostly a packet every 10 µs, now and then a second
    /// of silence or a burst of identical times, with a bounded disorder.
    static func burstyKeys(count: Int, disorder: UInt64, seed: UInt64) -> [UInt64] {
        var state = seed
        var time: UInt64 = 1_000_000_000
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let roll = (state >> 33) % 1000
            time += roll < 2 ? 1_000_000 : roll < 300 ? 0 : 10
            let back = disorder == 0 ? 0 : (state >> 13) % (disorder + 1)
            return time - min(time, back)
        }
    }

    /// 100 partitions searched at once, each fetch bringing a run of messages (as
    /// Kafka's fetches do): nothing of the window skipped, and few rounds.
    @Test(arguments: [(UInt64(0), false), (0, true), (200, true)])
    func manyPartitionsAreSearchedTogetherInFewRounds(disorder: UInt64, bursty: Bool) {
        let partitions = (0..<100).map { index in
            bursty
                ? Self.burstyKeys(count: 20_000 + index * 300, disorder: disorder, seed: UInt64(index) + 3)
                : Self.keys(count: 20_000 + index * 300, disorder: disorder, seed: UInt64(index) + 3)
        }
        let middle = partitions[0][10_000]
        for since in [0, middle, middle + 777, partitions[99].last! + 1] {
            var ranges: [Int32: (low: Int64, high: Int64)] = [:]
            for (index, keys) in partitions.enumerated() { ranges[Int32(index)] = (0, Int64(keys.count)) }
            let found = OffsetSeek.firstOffsets(in: ranges, target: since &- min(since, disorder)) { asked in
                var runs: [Int32: [OffsetSeek.Found]] = [:]
                for (partition, offset) in asked where offset < partitions[Int(partition)].count {
                    let keys = partitions[Int(partition)]
                    // Runs of 1 to 300 messages, as fetches of different sizes bring.
                    let end = min(keys.count, Int(offset) + 1 + Int(offset * 7919 % 300))
                    runs[partition] = (Int(offset)..<end).map { (Int64($0), keys[$0]) }
                }
                return runs
            }
            for (index, keys) in partitions.enumerated() {
                let offset = Int(found.offsets[Int32(index)]!)
                #expect(keys[..<offset].allSatisfy { $0 < since }, "partition \(index), since \(since)")
                if let first = keys.firstIndex(where: { $0 >= since }) { #expect(offset <= first) }
            }
            // The ends, then guesses, a bisection after two guesses that did not halve
            // the range: at most 2 + 3 log2(n) rounds (n < 2^16 here).
            #expect(found.rounds <= 2 + 3 * 16, "\(found.rounds) rounds")
            if bursty {
                #expect(found.rounds <= 18, "\(found.rounds) rounds: a bisection alone takes 17 with the ends")
            } else {
                #expect(found.rounds <= 6, "\(found.rounds) rounds on a steady link")
            }
        }
    }

    @Test func gapsInOffsetsAreSkipped() {
        // Offsets 0, 3, 6, ... exist (compacted or transactional markers between).
        let found = OffsetSeek.firstOffset(low: 0, high: 3000, target: 500) { offset in
            let next = (offset + 2) / 3 * 3
            return next < 3000 ? (next, UInt64(next)) : nil
        }
        #expect((499...501).contains(found.offset), "\(found.offset)")
    }

    /// Merges four partitions read interleaved in chunks of uneven sizes.
    static func merge(_ partitions: [[UInt64]], slack: UInt64) -> (out: [(partition: Int, key: UInt64)], early: Int) {
        var merge = CaptureTimeMerge<(Int, UInt64)>(partitions: [0, 1, 2, 3], slack: slack, window: 100_000)
        var out: [(partition: Int, key: UInt64)] = []
        var cursors = [0, 0, 0, 0]
        var turn = 0
        while cursors.enumerated().contains(where: { $0.element < partitions[$0.offset].count }) {
            let partition = turn % 4
            turn += 1
            for _ in 0..<((turn * 7) % 37 + 1) where cursors[partition] < partitions[partition].count {
                let key = partitions[partition][cursors[partition]]
                merge.add((partition, key), key: key, partition: Int32(partition))
                cursors[partition] += 1
                while let next = merge.next() { out.append(next) }
            }
            if cursors[partition] == partitions[partition].count { merge.finish(Int32(partition)) }
        }
        merge.finishAll()
        while let next = merge.next() { out.append(next) }
        #expect(merge.buffered == 0)
        return (out, merge.releasedEarly)
    }

    @Test func partitionsMergeIntoCaptureTimeOrder() {
        // Each partition in order (as the default partitioner fills them): the merge is sorted.
        let sorted = Self.merge((0..<4).map { Self.keys(count: 2000, disorder: 0, seed: UInt64($0) + 7) }, slack: 50)
        #expect(sorted.out.count == 8000)
        #expect(sorted.out.map(\.key) == sorted.out.map(\.key).sorted(), "non-decreasing capture times")
        #expect(sorted.early == 0)
        // Partitions with their own disorder: each partition's order is kept, nothing is lost.
        let partitions = (0..<4).map { Self.keys(count: 2000, disorder: 30, seed: UInt64($0) + 7) }
        let disordered = Self.merge(partitions, slack: 50)
        for partition in 0..<4 {
            #expect(disordered.out.filter { $0.partition == partition }.map(\.key) == partitions[partition])
        }
    }

    /// `--follow` writes what waited through a quiet second, and keeps merging
    /// afterwards: a flush does not close the partitions.
    @Test func aFlushWritesWhatWaitsAndTheMergeGoesOn() {
        var merge = CaptureTimeMerge<UInt64>(partitions: [0, 1], slack: 0, window: 1000)
        merge.add(10, key: 10, partition: 0)
        merge.add(20, key: 20, partition: 0)
        #expect(merge.next() == nil, "partition 1 has shown nothing yet")
        var flushed: [UInt64] = []
        while let next = merge.next(flush: true) { flushed.append(next) }
        #expect(flushed == [10, 20])
        // After the flush: partition 1 still holds partition 0 back until it shows a later key.
        merge.add(40, key: 40, partition: 0)
        #expect(merge.next() == nil)
        merge.add(30, key: 30, partition: 1)
        #expect(merge.next() == 30)
        #expect(merge.next() == nil, "partition 1 could still bring a key below 40")
        merge.observe(50, partition: 1)
        #expect(merge.next() == 40)
        #expect(merge.releasedEarly == 0)
    }

    @Test func aFullWindowReleasesEarlyAndSaysSo() {
        var merge = CaptureTimeMerge<Int>(partitions: [0, 1], slack: 0, window: 10)
        // Partition 1 never delivers: only the window releases partition 0's packets.
        var out: [Int] = []
        for index in 0..<100 {
            merge.add(index, key: UInt64(index) + 1, partition: 0)
            while let next = merge.next() { out.append(next) }
        }
        #expect(merge.buffered == 10)
        #expect(merge.releasedEarly == 90)
        #expect(out == Array(0..<90))
    }
}
