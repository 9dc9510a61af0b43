import FastcapaKafka
import Testing

/// `--record-time capture`'s arithmetic (a record's timestamp from its capture
/// time) and the seek's use of the broker's time index: its guess comes first,
/// the keys still decide.
@Suite struct RecordTimeTests {
    @Test func theRecordTimeIsTheKeysMillisecondTruncated() {
        #expect(MessageContract.recordMillis(micros: 1_717_243_200_123_999) == 1_717_243_200_123)
        #expect(MessageContract.recordMillis(micros: 1_717_243_200_124_000) == 1_717_243_200_124)
        #expect(MessageContract.recordMillis(micros: 999_999) == 999)
        // 0 would make librdkafka stamp its own clock: the epoch's first millisecond is 1.
        #expect(MessageContract.recordMillis(micros: 0) == 1)
        #expect(MessageContract.recordMillis(micros: 999) == 1)
        // A key past Int64's milliseconds (not a capture time): never negative.
        #expect(MessageContract.recordMillis(micros: .max) > 0)
    }

    @Test func aCaptureTimedRecordIsCreateTimeEqualToItsKeysMillisecond() {
        let key: UInt64 = 1_717_243_200_123_456
        #expect(OffsetSeek.isCaptureTimed(timestampMillis: 1_717_243_200_123, createTime: true, key: key))
        // A send time (a few ms later), LogAppendTime, or no timestamp: not capture-timed.
        #expect(!OffsetSeek.isCaptureTimed(timestampMillis: 1_717_243_200_125, createTime: true, key: key))
        #expect(!OffsetSeek.isCaptureTimed(timestampMillis: 1_717_243_200_123, createTime: false, key: key))
        #expect(!OffsetSeek.isCaptureTimed(timestampMillis: -1, createTime: false, key: key))
        // Rounded instead of truncated: not what the probe writes.
        #expect(
            !OffsetSeek.isCaptureTimed(timestampMillis: 1_717_243_200_124, createTime: true, key: 1_717_243_200_123_999)
        )
        #expect(OffsetSeek.indexMillis(target: 1_717_243_200_123_999) == 1_717_243_200_123)
    }

    /// What a broker's offsets-for-times answers for a capture-timed partition:
    /// the first offset whose timestamp (key ÷ 1000) is at or after `millis`.
    static func timeIndex(_ keys: [UInt64], millis: Int64) -> Int64 {
        Int64(keys.firstIndex { MessageContract.recordMillis(micros: $0) >= millis } ?? keys.count)
    }

    /// 20 partitions searched with and without the broker's guesses, each fetch
    /// bringing 256 messages: the same offsets either way (what the keys say),
    /// and with right guesses one round.
    @Test(arguments: [UInt64(0), 50, 200])
    func theTimeIndexGuessEndsTheSeekInOneRoundAndNeverChangesItsAnswer(disorder: UInt64) {
        let partitions = (0..<20).map {
            ReaderOrderTests.keys(count: 50_000 + $0 * 100, disorder: disorder, seed: UInt64($0) + 11)
        }
        func search(target: UInt64, guesses: [Int32: Int64]) -> (offsets: [Int32: Int64], probes: Int, rounds: Int) {
            var ranges: [Int32: (low: Int64, high: Int64)] = [:]
            for (index, keys) in partitions.enumerated() { ranges[Int32(index)] = (0, Int64(keys.count)) }
            return OffsetSeek.firstOffsets(in: ranges, target: target, guesses: guesses) { asked in
                var runs: [Int32: [OffsetSeek.Found]] = [:]
                for (partition, offset) in asked where offset < partitions[Int(partition)].count {
                    let keys = partitions[Int(partition)]
                    runs[partition] = (Int(offset)..<min(keys.count, Int(offset) + 256)).map { (Int64($0), keys[$0]) }
                }
                return runs
            }
        }
        for since in [UInt64(1_000_000), 1_123_456, 1_250_003, 1_499_990] {
            let target = since - disorder
            var right: [Int32: Int64] = [:]
            for (index, keys) in partitions.enumerated() {
                right[Int32(index)] = Self.timeIndex(keys, millis: OffsetSeek.indexMillis(target: target))
            }
            let byKeys = search(target: target, guesses: [:])
            let guessed = search(target: target, guesses: right)
            #expect(guessed.offsets == byKeys.offsets, "since \(since)")
            #expect(guessed.rounds == 1, "since \(since): \(guessed.rounds) rounds")
            #expect(guessed.probes == partitions.count)
            #expect(byKeys.probes >= guessed.probes)
            for (index, keys) in partitions.enumerated() {
                let offset = Int(guessed.offsets[Int32(index)]!)
                #expect(keys[..<offset].allSatisfy { $0 < since })
            }
            // A topic written with send times: the index's guesses are later than the capture (here the
            // partition's start, or its end); the keys still find the same offsets.
            for wrong in [Int64(0), 50_000, 7_777] {
                var guesses: [Int32: Int64] = [:]
                for (index, keys) in partitions.enumerated() { guesses[Int32(index)] = min(wrong, Int64(keys.count)) }
                #expect(search(target: target, guesses: guesses).offsets == byKeys.offsets, "guess \(wrong)")
            }
        }
    }

    @Test func aGuessPastTheEndFindsTheEndInOneFetch() {
        let keys = ReaderOrderTests.keys(count: 10_000, disorder: 0, seed: 5)
        let found = OffsetSeek.firstOffsets(
            in: [0: (0, Int64(keys.count))],
            target: keys.last! + 1,
            guesses: [0: Int64(keys.count)]
        ) { asked in
            [0: (Int(asked[0]!)..<min(keys.count, Int(asked[0]!) + 16)).map { (Int64($0), keys[$0]) }]
        }
        #expect(found.offsets[0] == Int64(keys.count))
        #expect(found.probes == 1)
    }
}
