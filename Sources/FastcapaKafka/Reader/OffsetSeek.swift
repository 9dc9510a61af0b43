import CRdKafka
import Dispatch

/// Where to start reading a partition for packets captured at or after a time:
/// a search over offsets by key, a few fetches per partition, every partition
/// at once.
///
/// Keys (capture times) are close to, not strictly, increasing within a
/// partition. The search is safe whatever the disorder: it moves its lower
/// bound past an offset only when the message there has a key below the
/// target, and the caller's target is `--since` minus the slack, the most a
/// key can fall below a key before it in the same partition. So every message
/// skipped comes before one whose key is below `since - slack`, and therefore
/// has a key below `since`. Where the disorder is larger than the slack, the
/// search can skip messages of the window, never include foreign ones.
///
/// Where it looks: a partition's first and last messages first, then where
/// the keys between the known bounds say the target lies (capture time grows
/// about linearly with offsets), a bisection instead after a guess that did not
/// halve the range (bursty traffic), so the worst case stays logarithmic. A
/// fetch brings a run of messages, not one: when the target lies in the run,
/// the search ends there.
///
/// A first guess, where the broker gives one: Kafka's offsets-for-times, the
/// first offset whose record timestamp is at or after the target's
/// millisecond. Where the record times are capture times (`--record-time
/// capture`: timestamp = key ÷ 1000), every message before that offset has a
/// key below the target, so the search's first fetch, just before it, mostly
/// ends the search. Where they are send times (`--record-time send`, or
/// Metron's Fastcapa: an upper bound of the capture time, hours later for a
/// replayed file) or the broker gives no offset, the guess is one fetch of the
/// search like any other: the keys decide where reading starts, whatever the guess.
package enum OffsetSeek {
    /// A message a probe read: its offset and its key's time.
    package typealias Found = (offset: Int64, key: UInt64)

    /// Whether a record's timestamp is the capture time in its key: CreateTime
    /// (`createTime`) and equal to the key's millisecond, as `--record-time
    /// capture` writes it. A topic whose records all pass can be sought by the
    /// broker's time index.
    package static func isCaptureTimed(timestampMillis: Int64, createTime: Bool, key: UInt64) -> Bool {
        createTime && timestampMillis == MessageContract.recordMillis(micros: key)
    }

    /// The millisecond the broker's time index is asked for, to seek `target` (µs):
    /// a record captured at or after `target` has a timestamp at or after it.
    package static func indexMillis(target: UInt64) -> Int64 {
        MessageContract.recordMillis(micros: target)
    }

    /// The first offset in `[low, high)` that may hold a key at or after
    /// `target`, and how many messages were fetched to find it. `keyAt(offset)`
    /// fetches the first message at or after `offset` (its offset and key), nil
    /// when there is none before `high`.
    package static func firstOffset(
        low: Int64,
        high: Int64,
        target: UInt64,
        keyAt: (Int64) throws -> Found?
    ) rethrows -> (offset: Int64, probes: Int) {
        let found = try firstOffsets(in: [0: (low, high)], target: target) { asked in
            var answers: [Int32: [Found]] = [:]
            for (partition, offset) in asked { answers[partition] = try keyAt(offset).map { [$0] } }
            return answers
        }
        return (found.offsets[0]!, found.probes)
    }

    /// One partition's search: the offsets still in question are `lower..<upper`.
    private struct Search {
        var lower: Int64
        var upper: Int64
        /// The key of a message just below `lower` (below the target), and of the
        /// first message at or after `upper` (at or above it), once read.
        var lowKey: UInt64?
        var highKey: UInt64?
        /// The distances of those keys from the target, as the guess weighs them.
        var lowWeight = 0.0
        var highWeight = 0.0
        /// Which bound the last fetch moved (-1 lower, +1 upper).
        var lastMoved = 0
        var endProbed = false
        /// Guesses since the range last halved, and its width then: two guesses
        /// that do not halve it give way to a bisection (the worst case stays
        /// logarithmic: three fetches per halving).
        var guesses = 0
        var checkWidth: Int64 = 0
        /// How many messages the last fetch brought.
        var run: Int64 = 1
        /// The broker's first guess (offsets-for-times), until the first fetch.
        var brokerGuess: Int64?

        var bracketed: Bool { lowKey != nil && highKey != nil }
        var guessing: Bool { bracketed && lowWeight > 0 && highWeight > 0 && guesses < 2 }

        func nextProbe() -> Int64 {
            if let brokerGuess {
                // From the message before the guess: a run that holds it and the guess brackets the target.
                return min(max(brokerGuess - 1, lower), upper - 1)
            }
            if lowKey == nil { return lower }
            if highKey == nil && !endProbed { return upper - 1 }
            if guessing {
                // Where the keys between the bounds put the target; aim the run's
                // middle at it, so a near miss still brings the answer.
                let fraction = lowWeight / (lowWeight + highWeight)
                let guess = lower + Int64(fraction * Double(upper - lower)) - run / 2
                return min(max(guess, lower), upper - 1)
            }
            return lower + (upper - lower) / 2
        }

        /// Applies what a fetch at `asked` brought: messages from the first at or
        /// after `asked` on, in offset order (none: nothing before the end).
        mutating func apply(_ run: [Found], asked: Int64, target: UInt64) {
            brokerGuess = nil
            let (wasBracketed, guessed) = (bracketed, guessing)
            defer {
                let width = upper - lower
                if !wasBracketed || !guessed || width <= checkWidth / 2 {
                    checkWidth = width
                    guesses = 0
                } else {
                    guesses += 1
                }
            }
            if asked == upper - 1 && highKey == nil { endProbed = true }
            let inRange = run.prefix { $0.offset < upper }
            self.run = max(Int64(inRange.count), 1)
            if let last = inRange.lastIndex(where: { $0.key < target }) {
                lower = inRange[last].offset + 1
                lowKey = inRange[last].key
                lowWeight = Double(target - inRange[last].key)
                // The same bound moved twice: the other one's weight is halved
                // (regula falsi's Illinois rule), so guesses stop landing on one side.
                if lastMoved == -1 { highWeight /= 2 }
                lastMoved = -1
                if last + 1 < inRange.count {
                    // The first message at or after `lower` is at or above the target: found.
                    upper = lower
                    highKey = inRange[last + 1].key
                }
            } else {
                // Nothing from `asked` up is below the target: the answer is at or below it.
                upper = asked
                if let first = inRange.first {
                    highKey = first.key
                    highWeight = Double(first.key - target) + 1
                    if lastMoved == 1 { lowWeight /= 2 }
                    lastMoved = 1
                }
            }
        }
    }

    /// The search in several partitions at once: each round asks every
    /// partition still searching for the messages from one offset on, in one
    /// call (`keysAt`: offsets by partition, to the messages read from there,
    /// the first at or after the offset and those after it, in order; a
    /// partition left out has none). So a topic of many partitions takes as
    /// many rounds as its hardest partition needs.
    /// `guesses`: the broker's offsets-for-times answer by partition (the first
    /// offset whose timestamp is at or after the target's millisecond; the
    /// partition's end when none is), fetched first.
    package static func firstOffsets(
        in ranges: [Int32: (low: Int64, high: Int64)],
        target: UInt64,
        guesses: [Int32: Int64] = [:],
        keysAt: ([Int32: Int64]) throws -> [Int32: [Found]]
    ) rethrows -> (offsets: [Int32: Int64], probes: Int, rounds: Int) {
        var searches = ranges.mapValues { Search(lower: $0.low, upper: $0.high) }
        for (partition, guess) in guesses where searches[partition] != nil {
            searches[partition]!.brokerGuess = guess
        }
        var probes = 0
        var rounds = 0
        while true {
            var asked: [Int32: Int64] = [:]
            for (partition, search) in searches where search.lower < search.upper {
                asked[partition] = search.nextProbe()
            }
            guard !asked.isEmpty else { break }
            rounds += 1
            probes += asked.count
            let answers = try keysAt(asked)
            for (partition, offset) in asked {
                searches[partition]!.apply(answers[partition] ?? [], asked: offset, target: target)
            }
        }
        return (searches.mapValues(\.lower), probes, rounds)
    }
}

/// Fetches, in several partitions at once, the first message at or after an
/// offset in each (librdkafka's simple consumer on a handle of its own, apart
/// from the reader's assignment, all partitions on one queue). A partition is
/// started once and then moved with `rd_kafka_seek` without waiting (stopping
/// and restarting takes a round trip to librdkafka's thread per partition: a
/// fifth of a second per round for 100 partitions). The seek raises the
/// partition's version, so librdkafka drops what was fetched for an earlier
/// round before it reaches the queue's reader.
final class OffsetProbe {
    private let handle: OpaquePointer
    private let topic: OpaquePointer
    private let topicName: String
    private let timeoutMs: Int32
    private let queue: OpaquePointer
    private var started = Set<Int32>()
    /// Messages read whose record timestamp is (is not) their key's capture time (`OffsetSeek.isCaptureTimed`).
    private(set) var captureTimed = 0
    private(set) var otherwiseTimed = 0

    init(properties: KafkaProperties, topic: String, timeoutMs: Int32) throws {
        // Each answer needs the first message (and its batch): small fetches, no waiting for more data.
        let conf = try KafkaConfiguration.makeConsumerConf(
            properties,
            defaults: [
                ("group.id", "fastcapa-consume-seek"), ("enable.auto.commit", "false"),
                ("enable.partition.eof", "true"), ("client.id", "fastcapa-consume-seek"),
                ("fetch.message.max.bytes", "8192"), ("fetch.wait.max.ms", "10"),
            ]
        )
        var reason = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &reason, reason.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(message: "cannot create a Kafka consumer: \(text(of: reason))")
        }
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else {
            rd_kafka_destroy(handle)
            throw KafkaError(message: "cannot open topic '\(topic)'")
        }
        guard let queue = rd_kafka_queue_new(handle) else {
            rd_kafka_topic_destroy(topicHandle)
            rd_kafka_destroy(handle)
            throw KafkaError(message: "cannot create a queue to seek in topic '\(topic)'")
        }
        self.handle = handle
        self.topic = topicHandle
        self.topicName = topic
        self.timeoutMs = timeoutMs
        self.queue = queue
    }

    deinit {
        for partition in started { rd_kafka_consume_stop(topic, partition) }
        rd_kafka_queue_destroy(queue)
        rd_kafka_topic_destroy(topic)
        rd_kafka_destroy(handle)
    }

    /// For each partition asked, the messages read from its offset on: the first
    /// at or after it, then those after it that came in the same round (a fetch
    /// brings a run), at most `runLimit`. A partition at its end is left out.
    func keys(atOrAfter asked: [Int32: Int64]) throws -> [Int32: [OffsetSeek.Found]] {
        // A partition no longer asked has found its offset: it stops fetching.
        for partition in started where asked[partition] == nil {
            rd_kafka_consume_stop(topic, partition)
            started.remove(partition)
        }
        for (partition, offset) in asked {
            var error = RD_KAFKA_RESP_ERR_NO_ERROR
            if started.contains(partition) {
                // Without waiting (timeout 0): the seek is done on librdkafka's thread.
                error = rd_kafka_seek(topic, partition, offset, 0)
            } else if rd_kafka_consume_start_queue(topic, partition, offset, queue) == 0 {
                started.insert(partition)
            } else {
                error = rd_kafka_last_error()
            }
            guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(
                    code: error,
                    message: "cannot seek in partition \(partition): \(String(cString: rd_kafka_err2str(error)))"
                )
            }
        }
        var runs: [Int32: [OffsetSeek.Found]] = [:]
        var answered = Set<Int32>()
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMs) * 1_000_000
        // Until every partition answered; then what is already queued (the rest of the runs).
        var drained = 0
        while answered.count < asked.count || drained < Self.runLimit {
            let now = DispatchTime.now().uptimeNanoseconds
            let waiting = answered.count < asked.count
            guard now < deadline || !waiting else {
                let silent = asked.keys.filter { !answered.contains($0) }.sorted()
                throw KafkaError(
                    message:
                        "no answer within \(timeoutMs / 1000) s while seeking in topic '\(topicName)' partition\(silent.count == 1 ? "" : "s") \(silent.map(String.init).joined(separator: ", "))"
                )
            }
            let wait = waiting ? Int32(min(UInt64(100), (deadline - now) / 1_000_000 + 1)) : 0
            guard let message = rd_kafka_consume_queue(queue, wait) else {
                if waiting { continue } else { break }
            }
            defer { rd_kafka_message_destroy(message) }
            if !waiting { drained += 1 }
            let record = message.pointee
            // Partitions done searching (still stopping) are not needed.
            guard let offset = asked[record.partition] else { continue }
            if record.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                answered.insert(record.partition)
                continue
            }
            guard record.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(
                    code: record.err,
                    message:
                        "seek failed in partition \(record.partition): \(String(cString: rd_kafka_err2str(record.err)))"
                )
            }
            let run = runs[record.partition] ?? []
            // In offset order from the asked offset, at most `runLimit`.
            guard record.offset >= offset, record.offset > run.last?.offset ?? -1, run.count < Self.runLimit
            else { continue }
            guard let micros = MessageContract.micros(key: record.key, length: record.key_len) else {
                throw KafkaError(
                    message: MessageContract.keyRefusal(
                        partition: record.partition,
                        offset: record.offset,
                        topic: topicName,
                        length: record.key_len
                    )
                )
            }
            answered.insert(record.partition)
            runs[record.partition, default: []].append((record.offset, micros))
            var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let timestamp = rd_kafka_message_timestamp(message, &type)
            if OffsetSeek.isCaptureTimed(
                timestampMillis: timestamp,
                createTime: type == RD_KAFKA_TIMESTAMP_CREATE_TIME,
                key: micros
            ) {
                captureTimed += 1
            } else {
                otherwiseTimed += 1
            }
        }
        return runs
    }

    /// The most messages of one partition kept from one round.
    static let runLimit = 4096
}
