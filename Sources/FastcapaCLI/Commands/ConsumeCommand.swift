import ArgumentParser
import FastcapaCapture
import FastcapaFilter
import FastcapaKafka
import Foundation
import PcapFormat
import Synchronization

/// `fastcapa consume`: reads captured packets back from a topic and writes
/// them as text (one line per packet, as `tcpdump -r` prints), classic pcap or
/// pcapng, each packet's time taken from its key. pycapa's consumer mode did this.
struct ConsumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Read packets from a topic and write them as text, pcap or pcapng.",
        discussion: "Example: fastcapa consume -b localhost:9092 -t pcap --format pcap | tshark -r -"
    )

    @OptionGroup var kafkaOptions: KafkaClientOptions
    @Option(name: [.short, .long], help: "Topic to read (default: the --config file's topic, else pcap).")
    var topic: String?
    /// `--format`'s values.
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, pcap, pcapng
    }

    /// `--from`'s values: where `KafkaTopicReader` starts.
    enum Start: String, ExpressibleByArgument, CaseIterable {
        case beginning, end, stored

        var reader: KafkaTopicReader.Start {
            switch self {
            case .beginning: .beginning
            case .end: .end
            case .stored: .stored
            }
        }
    }

    @Option(help: "Where to start: beginning, end, or stored (the consumer group's committed offsets).")
    var from: Start = .beginning
    @Option(help: "Consumer group (used with --from stored).") var group: String = "fastcapa-consume"
    @Option(help: "Partitions to read, comma-separated (default: all).") var partitions: String?
    @Option(name: [.customShort("n"), .long], help: "Stop after this many packets (0: no limit).") var count: Int = 0
    @Option(
        help: "Only packets captured at or after this time (epoch seconds, or ISO 8601 such as 2024-05-01T12:00:00Z)."
    )
    var since: String?
    @Option(help: "Only packets captured before this time (same forms as --since).") var until: String?
    @Option(
        help:
            "Seconds a key may fall below an earlier key in the same partition: the seek starts that much before --since, reading stops that much past --until, and partitions are merged in capture-time order with it."
    )
    var slack: Double = 10
    @Flag(
        help:
            "Read every partition from its start to its end and filter by key, without seeking or stopping early: for topics whose keys jump back by more than --slack (several captures replayed one after another)."
    )
    var scan = false
    @Flag(
        inversion: .prefixedNo,
        help:
            "Ask the broker's time index (offsets for times) for the seek's first guess when the topic's record times are capture times (--record-time capture); the keys decide either way."
    )
    var timeIndex = true
    @Option(
        help:
            "Packets held to merge partitions in capture-time order; past it the earliest is written anyway (counted as released early)."
    )
    var reorderWindow: Int = 100_000
    @Option(
        help: "Only packets this tcpdump expression accepts (pcap-filter(7)), on the frame and its original length."
    )
    var filter: String?
    @Option(help: "The snap length in the file header (pcap, pcapng); longer values are refused.")
    var snapLength: Int = CaptureSettings().snapLength
    @Flag(help: "Keep waiting for new packets after reaching the end.") var follow = false
    @Option(
        help:
            "Seconds to wait for the broker to answer (metadata, offsets), and, with --follow or --count, for a message."
    )
    var timeout: Int = 10
    @Option(
        help:
            "text, pcap or pcapng. pcapng has ns timestamps on an interface whose first message carries the time_ns header (a later one without it: its key's us x 1000), us ones otherwise."
    )
    var format: Format = .text
    @Option(
        name: [.short, .long],
        help:
            "Write here instead of standard output (complete files only: written under a temporary name, then renamed)."
    )
    var output: String?
    @Flag(help: "No progress line on standard error (it is shown only on a terminal).") var quiet = false

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count: \(count) is negative. Use 0 (no limit) or more.") }
        guard timeout > 0 else { throw ValidationError("--timeout: use 1 or more seconds.") }
        guard slack >= 0 && slack <= 86_400 else {
            throw ValidationError("--slack: \(slack) is out of range. Use 0 to 86400 seconds (default 10).")
        }
        guard reorderWindow >= 1 else { throw ValidationError("--reorder-window: use 1 or more packets.") }
        guard (1...CaptureSettings.maxSnapLength).contains(snapLength) else {
            throw ValidationError(
                "--snap-length: \(snapLength) is out of range. Use 1 to \(CaptureSettings.maxSnapLength) (default \(CaptureSettings().snapLength))."
            )
        }
        _ = try partitionList()
        _ = try timeRange()
        _ = try packetFilter()
    }

    /// The compiled `--filter`, if any; libpcap's message when it refuses it.
    func packetFilter() throws -> CaptureFilter? {
        guard let filter, !filter.allSatisfy(\.isWhitespace) else { return nil }
        do {
            return try CaptureFilter(filter, snapLength: snapLength)
        } catch {
            throw ValidationError(
                "--filter: '\(filter)' is refused by \(error). Write a tcpdump expression (pcap-filter(7)), e.g. 'host 10.0.0.1 and tcp port 443'."
            )
        }
    }

    func partitionList() throws -> [Int32]? {
        guard let partitions else { return nil }
        let list = partitions.split(separator: ",").map { Int32($0.trimmingCharacters(in: .whitespaces)) }
        guard !list.isEmpty, list.allSatisfy({ $0 != nil && $0! >= 0 }) else {
            throw ValidationError(
                "--partitions: '\(partitions)' is not a list of partition numbers. Write it like 0,2,3."
            )
        }
        return list.map { $0! }
    }

    func timeRange() throws -> (since: UInt64, until: UInt64) {
        let start = try since.map { try Self.parseTime($0, option: "--since") } ?? 0
        let end = try until.map { try Self.parseTime($0, option: "--until") } ?? UInt64.max
        guard start < end else { throw ValidationError("--since must come before --until.") }
        return (start, end)
    }

    /// Epoch seconds (with a fraction) or ISO 8601, to epoch microseconds.
    static func parseTime(_ text: String, option: String) throws -> UInt64 {
        if let seconds = Double(text), seconds >= 0, seconds < 1e11 {
            return UInt64((seconds * 1_000_000).rounded())
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        if let date = formatter.date(from: text) ?? plain.date(from: text), date.timeIntervalSince1970 >= 0 {
            return UInt64((date.timeIntervalSince1970 * 1_000_000).rounded())
        }
        throw ValidationError(
            "\(option): '\(text)' is not a time. Give epoch seconds (1714564800.5) or ISO 8601 (2024-05-01T12:00:00Z)."
        )
    }

    /// The Kafka properties and the topic, from `--config`, `-c`, `-X` and `-b`.
    func kafkaProperties() throws -> (kafka: KafkaProperties, topic: String) {
        let resolved = try kafkaOptions.resolve()
        resolved.report(command: "consume")
        return (resolved.kafka, try kafkaOptions.topic(given: topic, resolved: resolved))
    }

    func run() throws {
        // First: a signal during the seek or before it (seconds against a slow broker) ends the read as
        // any other, with the file named and no partial file left, never the default action.
        let interruption = ConsumeInterruption.install()
        let (kafka, topic) = try kafkaProperties()
        let range = try timeRange()
        let filter = try packetFilter()
        let bounds = ConsumeWindow<ConsumedPacket>.Bounds(
            since: range.since,
            until: range.until,
            slack: UInt64(slack * 1_000_000),
            scan: scan,
            follow: follow,
            count: count,
            idleTimeout: .seconds(timeout)
        )
        // Open the output first: an unwritable path is refused before any read.
        let output = try OutputFile(path: self.output)
        let reader: KafkaTopicReader
        do {
            reader = try KafkaTopicReader(
                properties: kafka,
                topic: topic,
                start: from.reader,
                partitions: try partitionList(),
                group: group,
                metadataTimeoutMs: Int32(clamping: timeout * 1000),
                seekingTo: bounds.seekTarget,
                timeIndex: timeIndex
            )
        } catch let error as KafkaError {
            if interruption.received != 0 {
                // The signal cut the metadata or the seek short: reported as a signal, not as the broker's
                // fault; the unfinished output is removed (OutputFile), so nothing that looks whole is left.
                try interruption.report(written: nil, output: self.output, follow: follow)
                return
            }
            throw ValidationError(
                "\(error.message). Check -b/--brokers (the broker must answer within --timeout \(timeout) s) and -t/--topic."
            )
        }
        var sink: any PacketSink =
            switch format {
            case .pcap: try PcapSink(output: output, snapLength: snapLength)
            case .pcapng: try PcapngSink(output: output, snapLength: snapLength)
            case .text: TextSink(output: output)
            }
        var window = ConsumeWindow<ConsumedPacket>(
            partitions: reader.partitions,
            bounds: bounds,
            reorderWindow: reorderWindow,
            startingAt: .now
        )
        var progress = ConsumeProgress(enabled: !quiet && isatty(STDERR_FILENO) == 1, reader: reader)
        reading: while !window.isComplete {
            if interruption.received != 0 { break reading }
            if let message = try reader.next(timeoutMs: 200) {
                // A bundle's packets one by one, as if each were a message: the window, the filter and
                // the merge see packets.
                let (packets, bundle) = try ConsumedPacket.packets(of: message, topic: topic)
                if bundle { progress.bundleRead(packets: packets.count) }
                progress.read(written: window.written)
                for packet in packets {
                    let action = window.messageRead(packet, key: packet.micros, partition: message.partition, at: .now)
                    {
                        filter?.matches($0.frame, originalLength: $0.originalLength) ?? true
                    }
                    if case .pause(let partition) = action { reader.pause(partition) }
                }
                try window.write { try sink.write($0) }
            } else {
                switch window.pollReturnedNothing(partitionsAtEnd: reader.partitionsAtEnd, at: .now) {
                case .stop: break reading
                case .flush: try window.write(flush: true) { try sink.write($0) }
                case .wait: break
                }
                progress.tick(written: window.written)
            }
        }
        // Also after SIGINT or SIGTERM: what was read is written and the file gets its name.
        try window.write(flush: true) { try sink.write($0) }
        try sink.finish()
        progress.end(window: window, quiet: quiet)
        // A signal is reported as one (not as packets that did not arrive), whatever -n asked.
        if interruption.received != 0 {
            try interruption.report(written: window.written, output: self.output, follow: follow)
            return
        }
        if window.fellShortOfCount {
            throw ValidationError("only \(window.written) of \(count) packets arrived within \(timeout) s.")
        }
    }
}

/// SIGINT and SIGTERM during `consume`: the first ends the read at the next poll
/// (at most 200 ms), so that the file is finished; the second, with the default
/// action restored, ends the process at once. The handler touches only a global
/// initialised before it is installed (a first touch would run `swift_once`,
/// which is not async-signal-safe) and `signal`, which is.
struct ConsumeInterruption {
    private static let received = Atomic<Int32>(0)

    static func install() -> ConsumeInterruption {
        received.store(0, ordering: .relaxed)
        for number in [SIGINT, SIGTERM] {
            Glibc.signal(number) { number in
                ConsumeInterruption.received.store(number, ordering: .relaxed)
                Glibc.signal(number, SIG_DFL)
            }
        }
        return ConsumeInterruption()
    }

    /// The signal received, 0 while none.
    var received: Int32 { Self.received.load(ordering: .relaxed) }

    /// Says what the signal left: the file holds what was read. Following, a signal is the normal end
    /// (exit 0); a bounded read cut short exits 128 + the signal's number.
    /// - Parameter written: packets written; nil when the signal came before reading began.
    func report(written: Int?, output: String?, follow: Bool) throws {
        let name = String(cString: strsignal(received))
        let what = output.map { "'\($0)'" } ?? "the output"
        let left =
            written.map { "\(what) holds the \($0) packets read before it\(follow ? "" : ", not the whole window")" }
            ?? "before the read began (metadata, offsets or the seek): nothing was written"
        LogOutput.writeToStandardError("consume: stopped by signal \(received) (\(name)): \(left)\n")
        if !follow { throw ExitCode(128 + received) }
    }
}
