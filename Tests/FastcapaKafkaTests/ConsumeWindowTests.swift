import FastcapaKafka
import Testing

/// `consume`'s window without a broker: messages, empty polls and the clock
/// fed by hand, and what the window answers.
@Suite struct ConsumeWindowTests {
    /// A packet is its key and partition, so that what is written can be compared.
    struct Packet: Equatable {
        var key: UInt64
        var partition: Int32
    }

    static let start = ContinuousClock.now

    static func bounds(
        since: UInt64 = 0,
        until: UInt64 = .max,
        slack: UInt64 = 10,
        scan: Bool = false,
        follow: Bool = false,
        count: Int = 0,
        idleTimeout: Duration = .seconds(10)
    ) -> ConsumeWindow<Packet>.Bounds {
        .init(
            since: since,
            until: until,
            slack: slack,
            scan: scan,
            follow: follow,
            count: count,
            idleTimeout: idleTimeout
        )
    }

    static func window(
        _ bounds: ConsumeWindow<Packet>.Bounds,
        partitions: [Int32] = [0],
        reorderWindow: Int = 1000
    ) -> ConsumeWindow<Packet> {
        ConsumeWindow(partitions: partitions, bounds: bounds, reorderWindow: reorderWindow, startingAt: start)
    }

    /// Reads `key` from `partition` at `seconds` past the start, then writes what may be written.
    static func read(
        _ key: UInt64,
        _ partition: Int32 = 0,
        into window: inout ConsumeWindow<Packet>,
        written: inout [Packet],
        at seconds: Double = 0,
        matches: (Packet) -> Bool = { _ in true }
    ) -> ConsumeWindow<Packet>.MessageAction {
        let packet = Packet(key: key, partition: partition)
        let action = window.messageRead(
            packet,
            key: key,
            partition: partition,
            at: start + .seconds(seconds),
            matches: matches
        )
        window.write { written.append($0) }
        return action
    }

    static func poll(
        _ window: inout ConsumeWindow<Packet>,
        atEnd: Set<Int32> = [],
        at seconds: Double
    ) -> ConsumeWindow<Packet>.PollAction {
        window.pollReturnedNothing(partitionsAtEnd: atEnd, at: start + .seconds(seconds))
    }

    @Test func theBoundsSeekTheSlackBeforeSinceAndStopTheSlackPastUntil() {
        #expect(Self.bounds(since: 0).seekTarget == nil, "no --since: the read starts where --from says")
        #expect(Self.bounds(since: 1_000).seekTarget == 990)
        #expect(Self.bounds(since: 5).seekTarget == 0, "the slack does not reach below 0")
        #expect(Self.bounds(since: 1_000, scan: true).seekTarget == nil, "--scan never seeks")
        #expect(Self.bounds(until: .max).stopAfter == .max)
        #expect(Self.bounds(until: 2_000).stopAfter == 2_010)
        #expect(Self.bounds(until: 2_000, scan: true).stopAfter == .max, "--scan reads every partition to its end")
        #expect(Self.bounds(until: 2_000, follow: true).stopAfter == .max, "following never ends a partition")
    }

    @Test func onlyPacketsInsideSinceAndUntilAreWrittenAndTheFilterIsAskedOnlyThere() {
        var window = Self.window(Self.bounds(since: 100, until: 200))
        var written: [Packet] = []
        var asked: [UInt64] = []
        for key: UInt64 in [50, 99, 100, 150, 151, 199, 200, 205] {
            let action = Self.read(key, into: &window, written: &written) { packet in
                asked.append(packet.key)
                return packet.key != 151
            }
            #expect(action == .read, "key \(key) is within the slack past --until")
        }
        #expect(Self.poll(&window, atEnd: [0], at: 1) == .stop, "the only partition is at its end")
        window.write(flush: true) { written.append($0) }
        #expect(asked == [100, 150, 151, 199])
        #expect(written.map(\.key) == [100, 150, 199])
        #expect(window.written == 3)
    }

    @Test func aPartitionPastUntilAndTheSlackIsPausedOnceAndNoLongerHoldsTheOthersBack() {
        var window = Self.window(Self.bounds(since: 0, until: 100, slack: 10), partitions: [0, 1])
        var written: [Packet] = []
        #expect(Self.read(50, 1, into: &window, written: &written) == .read)
        #expect(Self.read(60, 0, into: &window, written: &written) == .read)
        #expect(written.map(\.key) == [50], "60 waits: partition 1 could still bring a key below it")
        #expect(Self.read(111, 0, into: &window, written: &written) == .pause(partition: 0))
        #expect(Self.read(112, 0, into: &window, written: &written) == .read, "paused once")
        #expect(written.map(\.key) == [50])
        #expect(Self.read(70, 1, into: &window, written: &written) == .read)
        #expect(written.map(\.key) == [50, 60, 70], "partition 0 is past the window: 70 does not wait for it")
        #expect(Self.poll(&window, at: 1) == .wait, "partition 1 is neither at its end nor past --until")
        #expect(Self.poll(&window, atEnd: [1], at: 2) == .stop)
    }

    @Test func partitionsEndingAtDifferentTimesAreMergedInCaptureTimeOrder() {
        var window = Self.window(Self.bounds(slack: 5), partitions: [0, 1, 2])
        var written: [Packet] = []
        // Partition 2 holds one early packet and ends; 0 and 1 go on, then 1 ends; 0 ends last.
        _ = Self.read(3, 2, into: &window, written: &written)
        _ = Self.read(10, 0, into: &window, written: &written)
        _ = Self.read(11, 1, into: &window, written: &written)
        #expect(written.map(\.key) == [3], "10 waits: partition 2 has shown nothing 5 past it")
        #expect(Self.poll(&window, atEnd: [2], at: 0.2) == .wait)
        _ = Self.read(20, 0, into: &window, written: &written)
        #expect(written.map(\.key) == [3, 10, 11], "partition 2 ended: 10 no longer waits for it; 20 waits for 1")
        _ = Self.read(30, 1, into: &window, written: &written)
        #expect(written.map(\.key) == [3, 10, 11, 20])
        #expect(Self.poll(&window, atEnd: [1, 2], at: 0.4) == .wait, "partition 0 is still being read")
        _ = Self.read(25, 0, into: &window, written: &written)
        #expect(written.map(\.key) == [3, 10, 11, 20, 25], "30 waits: partition 0 could still bring 34")
        #expect(Self.poll(&window, atEnd: [0, 1, 2], at: 0.6) == .stop)
        window.write(flush: true) { written.append($0) }
        #expect(written.map(\.key) == [3, 10, 11, 20, 25, 30])
        #expect(window.outOfOrder == 0 && window.releasedEarly == 0)
    }

    @Test func aBoundedReadWaitsForEveryPartitionEndHoweverLongTheSilence() {
        var window = Self.window(Self.bounds(idleTimeout: .seconds(2)), partitions: [0, 1])
        #expect(Self.poll(&window, atEnd: [0], at: 60) == .wait, "no --follow, no --count: the end decides")
        #expect(Self.poll(&window, atEnd: [0, 1], at: 61) == .stop)
    }

    @Test func followingFlushesAfterASecondOfSilenceAndStopsAfterTheTimeout() {
        var window = Self.window(Self.bounds(follow: true, idleTimeout: .seconds(3)), partitions: [0, 1])
        var written: [Packet] = []
        _ = Self.read(10, 0, into: &window, written: &written, at: 0)
        #expect(written.isEmpty, "partition 1 could still bring an earlier packet")
        #expect(Self.poll(&window, atEnd: [0, 1], at: 0.5) == .wait, "following, partition ends do not end the read")
        #expect(Self.poll(&window, at: 1.0) == .wait, "a second exactly is not yet more than one")
        #expect(Self.poll(&window, at: 1.2) == .flush)
        window.write(flush: true) { written.append($0) }
        #expect(written.map(\.key) == [10])
        // A message starts the silence again.
        _ = Self.read(5, 1, into: &window, written: &written, at: 2.5)
        #expect(Self.poll(&window, at: 3.2) == .wait)
        #expect(Self.poll(&window, at: 3.6) == .flush)
        #expect(Self.poll(&window, at: 5.4) == .flush, "3 s exactly is not yet more than --timeout")
        #expect(Self.poll(&window, at: 5.6) == .stop)
        window.write(flush: true) { written.append($0) }
        #expect(written.map(\.key) == [10, 5], "the later message is merged again after the flush")
        #expect(window.outOfOrder == 1)
        #expect(!window.fellShortOfCount, "no --count")
    }

    @Test func countStopsTheWritesAndABoundedReadWithCountTimesOut() {
        var window = Self.window(Self.bounds(count: 3, idleTimeout: .seconds(2)))
        var written: [Packet] = []
        _ = Self.read(1, into: &window, written: &written)
        _ = Self.read(2, into: &window, written: &written)
        #expect(!window.isComplete)
        #expect(Self.poll(&window, at: 1.5) == .wait)
        #expect(Self.poll(&window, at: 2.5) == .stop, "--count waits --timeout for a message, following or not")
        window.write(flush: true) { written.append($0) }
        #expect(written.map(\.key) == [1, 2])
        #expect(!window.fellShortOfCount, "short only matters when following")

        var more = Self.window(Self.bounds(count: 3))
        var kept: [Packet] = []
        for key: UInt64 in 1...5 { _ = Self.read(key, into: &more, written: &kept) }
        #expect(more.isComplete)
        more.write(flush: true) { kept.append($0) }
        #expect(kept.map(\.key) == [1, 2, 3], "never more than --count")
        #expect(more.written == 3)
    }

    @Test func followingWithCountSaysWhenFewerArrived() {
        var window = Self.window(Self.bounds(follow: true, count: 4, idleTimeout: .seconds(1)))
        var written: [Packet] = []
        _ = Self.read(1, into: &window, written: &written)
        #expect(Self.poll(&window, at: 1.5) == .stop)
        window.write(flush: true) { written.append($0) }
        #expect(window.written == 1)
        #expect(window.fellShortOfCount)
    }

    @Test func scanKeepsReadingPastUntilAndStillKeepsOnlyTheWindow() {
        var window = Self.window(Self.bounds(since: 100, until: 200, scan: true))
        var written: [Packet] = []
        for key: UInt64 in [150, 900, 120, 50, 199] {
            #expect(Self.read(key, into: &window, written: &written) == .read, "--scan pauses nothing")
        }
        #expect(Self.poll(&window, atEnd: [0], at: 1) == .stop)
        window.write(flush: true) { written.append($0) }
        #expect(written.map(\.key) == [150, 120, 199])
    }

    @Test func aFullReorderWindowWritesEarlyAndCountsIt() {
        var window = Self.window(Self.bounds(), partitions: [0, 1], reorderWindow: 2)
        var written: [Packet] = []
        for key: UInt64 in [10, 20, 30] { _ = Self.read(key, 0, into: &window, written: &written) }
        #expect(written.map(\.key) == [10], "partition 1 shows nothing; the third packet overfills the window")
        #expect(window.releasedEarly == 1)
    }
}
