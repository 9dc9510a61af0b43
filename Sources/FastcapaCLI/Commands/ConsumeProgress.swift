import FastcapaKafka
import Foundation

/// `fastcapa consume`'s progress line on standard error, on a terminal only
/// (never on a pipe, never with `--quiet`): packets read and written, the read
/// rate, and each partition's position against its end offset.
struct ConsumeProgress {
    let enabled: Bool
    let reader: KafkaTopicReader
    private let started = Date()
    private var lastShown = Date.distantPast
    private var read = 0
    /// Bundles read, and the packets they held.
    private var bundles = 0
    private var bundledPackets = 0

    init(enabled: Bool, reader: KafkaTopicReader) {
        self.enabled = enabled
        self.reader = reader
    }

    /// A message was read; shows the line at most twice a second.
    mutating func read(written: Int) {
        guard enabled else { return }
        read += 1
        tick(written: written)
    }

    /// The message read was a bundle of `packets`.
    mutating func bundleRead(packets: Int) {
        bundles += 1
        bundledPackets += packets
    }

    /// A poll came back empty: the line still moves.
    mutating func tick(written: Int) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(lastShown) >= 0.5 else { return }
        lastShown = now
        show(written: written, final: false)
    }

    /// The read ended: the last line, and where it went; unless `--quiet`, one
    /// summary line on standard error (terminal or not), as `tcpdump -r` does.
    mutating func end<Packet>(window: ConsumeWindow<Packet>, quiet: Bool) {
        let written = window.written
        if window.releasedEarly > 0 {
            LogOutput.writeToStandardError(
                "consume: \(window.releasedEarly) packets were written before the reorder window could place them (raise --reorder-window for strict capture-time order)\n"
            )
        }
        if window.outOfOrder > 0 {
            // Said even with --quiet: readers that expect a sorted file (mergecap -a, some IDSs) must know.
            LogOutput.writeToStandardError(
                "consume: \(window.outOfOrder) packets are out of capture-time order in the output (a key below an earlier packet's: raise --slack or --reorder-window, or sort with reordercap)\n"
            )
        }
        if enabled { show(written: written, final: true) }
        guard !quiet else { return }
        // The offsets of the first 8 partitions: a topic of 100 would fill the screen.
        var starts = reader.partitions.prefix(8).map { "\($0):\(reader.startOffsets[$0] ?? 0)" }.joined(separator: " ")
        if reader.partitions.count > 8 { starts += " (and \(reader.partitions.count - 8) more partitions)" }
        let bundleCount = bundles > 0 ? " (\(bundles) of them bundles of \(bundledPackets) packets)" : ""
        let seek =
            reader.seekProbes > 0
            ? "; seek: \(reader.seekProbes) fetches in \(reader.seekRounds) rounds (\(String(format: "%.2f", reader.seekSeconds)) s, \(Self.describe(reader.seekGuess))), started at offsets \(starts)"
            : ""
        LogOutput.writeToStandardError(
            "consume: \(written) packets written of \(reader.messagesRead) messages read\(bundleCount)\(seek)\n"
        )
    }

    /// How the seek began, for the closing line.
    static func describe(_ guess: KafkaTopicReader.SeekGuess) -> String {
        switch guess {
        case .none: "no seek"
        case .timeIndex: "first guess from the broker's time index: record times are capture times"
        case .noTimeIndex(let why): "by keys: the broker's time index gave no offset (\(why))"
        case .notCaptureTimed: "by keys: record times are not capture times (--record-time send)"
        case .notAsked: "by keys alone (--no-time-index)"
        }
    }

    private mutating func show(written: Int, final: Bool) {
        let seconds = max(Date().timeIntervalSince(started), 0.001)
        let positions = reader.partitions.map { partition in
            let end = reader.endOffsets[partition] ?? 0
            let position = reader.positions[partition].map { $0 + 1 } ?? reader.startOffsets[partition] ?? 0
            return "p\(partition) \(position)/\(end)"
        }.joined(separator: " ")
        let line =
            "\r\u{1B}[K\(written) packets written, \(read) read (\(Int(Double(read) / seconds))/s); \(positions)"
        LogOutput.writeToStandardError((line + (final ? "\n" : "")))
    }
}
