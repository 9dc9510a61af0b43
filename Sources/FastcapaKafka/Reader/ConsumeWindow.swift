/// `consume`'s read of a time window, as a state machine with no I/O of its
/// own: the command feeds it what the reader returns (a message, an empty poll
/// with the partitions at their end) and does what each call answers (pause a
/// partition, flush, stop); `nextToWrite` and `write(flush:to:)` hand out the
/// packets to write.
///
/// A message inside `[since, until)` that `matches` is added to the
/// capture-time merge; any other is only observed (what its partition can
/// still bring). A key past `until` plus the slack ends its partition's part of
/// the window: the merge stops waiting for it, and it is paused once. Without
/// `--follow`, the read ends when every partition is at its end or paused.
/// Following, what waited a second with nothing new is flushed (the partitions
/// stay open, so what comes next is merged again), and `--timeout` seconds with
/// nothing new end the read; so does `--timeout` with `--count` when not
/// following. `--count` bounds the packets written. A bundle
/// (`MessageContract.Bundle`) is fed packet by packet, each with its own
/// capture time as its key: a "message" here is one packet.
package struct ConsumeWindow<Packet> {
    /// The options that decide which packets are kept and when the read ends.
    package struct Bounds: Equatable, Sendable {
        /// `--since` and `--until`: packets captured in `[since, until)`, epoch µs (`until` `.max`: no end).
        package var since: UInt64
        package var until: UInt64
        /// `--slack`, µs: how far a key may fall below an earlier key in the same partition.
        package var slack: UInt64
        /// `--scan`: every partition from its start to its end, with no seek and no early stop.
        package var scan: Bool
        /// `--follow`: past the end, keep waiting for new packets.
        package var follow: Bool
        /// `--count`: packets to write, 0 for no limit.
        package var count: Int
        /// `--timeout`: how long a read that waits for messages (`--follow`, `--count`) waits for the next.
        package var idleTimeout: Duration

        package init(
            since: UInt64,
            until: UInt64,
            slack: UInt64,
            scan: Bool,
            follow: Bool,
            count: Int,
            idleTimeout: Duration
        ) {
            self.since = since
            self.until = until
            self.slack = slack
            self.scan = scan
            self.follow = follow
            self.count = count
            self.idleTimeout = idleTimeout
        }

        /// The key the seek looks for: the slack before `since`, so that no packet of the window is
        /// skipped; nil when the read starts where `--from` says (no `--since`, or `--scan`).
        package var seekTarget: UInt64? { since > 0 && !scan ? since - min(since, slack) : nil }

        /// A key past this ends its partition's part of the window: nothing later in it can fall inside.
        /// `.max` when nothing does (no `--until`, `--scan`, or `--follow`).
        package var stopAfter: UInt64 { until == .max || scan || follow ? .max : until &+ slack }

        func contains(_ key: UInt64) -> Bool { key >= since && key < until }
    }

    /// What the reader does after a message.
    package enum MessageAction: Equatable, Sendable {
        /// Poll again.
        case read
        /// Stop fetching `partition` (it passed the window), then poll again.
        case pause(partition: Int32)
    }

    /// What the reader does after a poll that brought no message.
    package enum PollAction: Equatable, Sendable {
        /// Poll again.
        case wait
        /// Write everything waiting (`write(flush: true)`), then poll again.
        case flush
        /// End the read: write everything waiting (`write(flush: true)`).
        case stop
    }

    package let bounds: Bounds
    private let partitions: [Int32]
    private var merge: CaptureTimeMerge<Packet>
    /// Partitions paused past the window.
    private var passed = Set<Int32>()
    private var lastMessage: ContinuousClock.Instant
    /// Packets handed out by `nextToWrite`.
    package private(set) var written = 0

    /// - Parameters:
    ///   - partitions: the partitions read (the reader's).
    ///   - reorderWindow: packets the merge may hold (`--reorder-window`).
    ///   - now: the read's start, from which the first idle time counts.
    package init(
        partitions: [Int32],
        bounds: Bounds,
        reorderWindow: Int,
        startingAt now: ContinuousClock.Instant
    ) {
        self.bounds = bounds
        self.partitions = partitions
        self.merge = CaptureTimeMerge(partitions: partitions, slack: bounds.slack, window: reorderWindow)
        self.lastMessage = now
    }

    /// `--count` packets were written: the read ends.
    package var isComplete: Bool { bounds.count > 0 && written >= bounds.count }

    /// Following with `--count`, fewer packets than asked arrived before the read ended.
    package var fellShortOfCount: Bool { bounds.follow && bounds.count > 0 && written < bounds.count }

    /// Packets written before the merge could place them (the reorder window was full).
    package var releasedEarly: Int { merge.releasedEarly }
    /// Packets written with a key below one written before them.
    package var outOfOrder: Int { merge.outOfOrder }

    /// A message was read from `partition` with capture time `key`.
    /// - Parameter matches: the packet's other conditions (`--filter`), asked only inside the time window.
    package mutating func messageRead(
        _ packet: Packet,
        key: UInt64,
        partition: Int32,
        at now: ContinuousClock.Instant,
        matches: (Packet) -> Bool
    ) -> MessageAction {
        lastMessage = now
        var action = MessageAction.read
        if key > bounds.stopAfter {
            merge.finish(partition)
            if passed.insert(partition).inserted { action = .pause(partition: partition) }
        }
        if bounds.contains(key) && matches(packet) {
            merge.add(packet, key: key, partition: partition)
        } else {
            merge.observe(key, partition: partition)
        }
        return action
    }

    /// A poll brought no message; `partitionsAtEnd`: the partitions whose end the reader has reached.
    package mutating func pollReturnedNothing(
        partitionsAtEnd: Set<Int32>,
        at now: ContinuousClock.Instant
    ) -> PollAction {
        if !bounds.follow {
            for partition in partitionsAtEnd { merge.finish(partition) }
            if partitions.allSatisfy({ partitionsAtEnd.contains($0) || passed.contains($0) }) { return .stop }
        }
        let idle = now - lastMessage
        if idle > bounds.idleTimeout && (bounds.follow || bounds.count > 0) { return .stop }
        if bounds.follow && idle > .seconds(1) { return .flush }
        return .wait
    }

    /// The next packet to write, or nil: one the merge can place now, or, with `flush`, the earliest
    /// waiting whatever the open partitions could still bring; never more than `--count` in all.
    package mutating func nextToWrite(flush: Bool = false) -> Packet? {
        guard !isComplete, let packet = merge.next(flush: flush) else { return nil }
        written += 1
        return packet
    }

    /// Hands each packet `nextToWrite(flush:)` gives out to `write`, until it gives none.
    package mutating func write(flush: Bool = false, to write: (Packet) throws -> Void) rethrows {
        while let packet = nextToWrite(flush: flush) { try write(packet) }
    }
}
