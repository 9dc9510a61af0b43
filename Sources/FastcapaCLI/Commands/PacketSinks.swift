import ArgumentParser
import FastcapaKafka
import Foundation
import PcapFormat

/// One packet as `fastcapa consume` read it: its capture time (the key, and
/// `time_ns` when the message carries it), the captured bytes (the value), the
/// frame's original length (`orig_len`, else the value's length) and where it
/// came from (`probe`, `port` headers, if present).
struct ConsumedPacket {
    var micros: UInt64
    /// The capture time in ns since the epoch, from `time_ns` (nil: the message has none).
    var nanos: UInt64?
    var frame: [UInt8]
    var originalLength: Int
    var probe: String?
    var port: String?
    var partition: Int32
    var offset: Int64

    /// The message contract (`MessageContract`) read back; throws when the key
    /// is not a capture time.
    init(_ message: KafkaTopicReader.Message, topic: String) throws {
        guard let micros = message.key.flatMap(MessageContract.micros(key:)) else {
            let refusal = MessageContract.keyRefusal(
                partition: message.partition,
                offset: message.offset,
                topic: topic,
                length: message.key?.count ?? 0
            )
            throw ValidationError("\(refusal). Read it with kcat instead.")
        }
        self.micros = micros
        nanos = message.headers.first { $0.name == MessageContract.Header.timeNanos.name }
            .flatMap { MessageContract.nanos(timeHeader: $0.value) }
        frame = message.value
        originalLength = MessageContract.originalLength(
            header: message.header(MessageContract.originalLengthName),
            valueLength: frame.count
        )
        probe = message.header(MessageContract.Header.probe.name)
        port = message.header(MessageContract.Header.port.name)
        partition = message.partition
        offset = message.offset
    }

    /// A packet of a bundle (`MessageContract.Bundle`): its own capture time and
    /// lengths, the bundle's `probe` and `port` headers.
    init(_ packet: MessageContract.Bundle.Packet, of message: KafkaTopicReader.Message) {
        micros = packet.micros
        nanos = nil
        frame = packet.frame
        originalLength = packet.originalLength
        probe = message.header(MessageContract.Header.probe.name)
        port = message.header(MessageContract.Header.port.name)
        partition = message.partition
        offset = message.offset
    }

    /// The packets of `message`: its bundle's (`fastcapa.format` marks one), in
    /// receive order, or the one packet a message without the marker holds.
    /// Throws when the key is not a capture time or the bundle is malformed.
    static func packets(
        of message: KafkaTopicReader.Message,
        topic: String
    ) throws -> (packets: [ConsumedPacket], bundle: Bool) {
        let marker = message.headers.first { $0.name == MessageContract.Bundle.formatHeader }?.value
        do {
            let bundle = try MessageContract.Bundle.isBundle(
                marker: marker,
                partition: message.partition,
                offset: message.offset,
                topic: topic
            )
            guard bundle else { return ([try ConsumedPacket(message, topic: topic)], false) }
            // The key must still be a capture time: it is what the seek reads.
            _ = try ConsumedPacket(message, topic: topic)
            let packets = try MessageContract.Bundle.packets(
                in: message.value,
                count: message.header(MessageContract.Bundle.countHeader),
                partition: message.partition,
                offset: message.offset,
                topic: topic
            )
            return (packets.map { ConsumedPacket($0, of: message) }, true)
        } catch let refusal as MessageContract.Bundle.Refusal {
            throw ValidationError("\(refusal)")
        }
    }

    /// Refuses a value longer than the snap length a file's header declares.
    func checkFits(_ snapLength: Int) throws {
        guard frame.count <= snapLength else {
            throw ValidationError(
                "the message at partition \(partition) offset \(offset) holds \(frame.count) bytes, more than the snap length \(snapLength) in the file's header. Give --snap-length \(frame.count) or more."
            )
        }
    }

    /// `probe:port`, or whichever of the two the message carries.
    var interfaceName: String? {
        switch (probe, port) {
        case (let probe?, let port?): "\(probe):\(port)"
        case (let probe?, nil): probe
        case (nil, let port?): "port \(port)"
        case (nil, nil): nil
        }
    }
}

/// Where `fastcapa consume` writes the packets it reads.
protocol PacketSink {
    mutating func write(_ packet: ConsumedPacket) throws
    /// Everything was written: flush, and give a file its name.
    mutating func finish() throws
}

/// Standard output, or a file written under a temporary name in the same
/// folder and renamed to `path` only once complete: a read that fails leaves no
/// file that looks whole. Writes are buffered.
final class OutputFile {
    private let handle: FileHandle
    private let path: String?
    private let temporary: String?
    private var buffer: [UInt8] = []
    private var finished = false
    static let bufferSize = 1 << 20

    init(path: String?) throws {
        self.path = path
        guard let path else {
            handle = .standardOutput
            temporary = nil
            return
        }
        let url = URL(fileURLWithPath: path)
        let temporary =
            url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())").path
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ValidationError(
                "-o: cannot write '\(path)': \(String(cString: strerror(errno))). Check that its folder exists and is writable."
            )
        }
        handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        self.temporary = temporary
        buffer.reserveCapacity(Self.bufferSize)
    }

    deinit {
        // Not finished (an error ended the read): nothing is left behind.
        if !finished, let temporary { unlink(temporary) }
    }

    func write(_ bytes: [UInt8]) throws {
        buffer += bytes
        if buffer.count >= Self.bufferSize { try flush() }
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        do {
            try handle.write(contentsOf: buffer)
        } catch {
            throw ValidationError("cannot write to \(path.map { "'\($0)'" } ?? "standard output"): \(error)")
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, and renames the temporary file to its name.
    func finish() throws {
        try flush()
        guard let path, let temporary else { return }
        try handle.synchronize()
        guard rename(temporary, path) == 0 else {
            throw ValidationError("cannot rename the output to '\(path)': \(String(cString: strerror(errno)))")
        }
        finished = true
    }
}

/// One line per packet, as `tcpdump -r` prints (PacketText).
struct TextSink: PacketSink {
    let output: OutputFile

    mutating func write(_ packet: ConsumedPacket) throws {
        let line = PacketText.line(micros: packet.micros, frame: packet.frame, originalLength: packet.originalLength)
        try output.write(Array((line + "\n").utf8))
    }

    mutating func finish() throws { try output.finish() }
}

/// A classic pcap file (Ethernet, microseconds) whose header's snap length is
/// the snap length; each record has its captured and original lengths.
struct PcapSink: PacketSink {
    let output: OutputFile
    let snapLength: Int

    init(output: OutputFile, snapLength: Int) throws {
        self.output = output
        self.snapLength = snapLength
        try output.write(PcapFile.header(linkType: 1, snapLength: UInt32(snapLength)))
    }

    mutating func write(_ packet: ConsumedPacket) throws {
        try packet.checkFits(snapLength)
        let record = PcapRecord(
            micros: packet.micros,
            data: packet.frame,
            originalLength: UInt32(clamping: packet.originalLength)
        )
        try output.write(PcapFile.recordBytes(record))
    }

    mutating func finish() throws { try output.finish() }
}

/// pcapng: one interface per (probe, port) seen, named `probe:port` when the
/// messages carry those headers; `shb_userappl` names fastcapa. An interface is
/// described when its first packet comes: with nanosecond timestamps when that
/// message carries `time_ns`, else microsecond ones (the key). On a nanosecond
/// interface a later message without `time_ns` gets its key's µs × 1000; on a
/// microsecond one, `time_ns` is not used.
struct PcapngSink: PacketSink {
    let output: OutputFile
    let snapLength: Int
    private var interfaces: [String?: (index: UInt32, nanoseconds: Bool)] = [:]

    init(output: OutputFile, snapLength: Int) throws {
        self.output = output
        self.snapLength = snapLength
        try output.write(Pcapng.sectionHeader(userApplication: "fastcapa \(FastcapaVersion.number)"))
    }

    mutating func write(_ packet: ConsumedPacket) throws {
        try packet.checkFits(snapLength)
        let name = packet.interfaceName
        let interface: (index: UInt32, nanoseconds: Bool)
        if let known = interfaces[name] {
            interface = known
        } else {
            interface = (UInt32(interfaces.count), packet.nanos != nil)
            interfaces[name] = interface
            try output.write(
                Pcapng.interface(name: name, snapLength: UInt32(snapLength), nanoseconds: interface.nanoseconds)
            )
        }
        try output.write(
            Pcapng.enhancedPacket(
                interface: interface.index,
                timestamp: interface.nanoseconds ? packet.nanos ?? packet.micros &* 1000 : packet.micros,
                data: packet.frame,
                originalLength: UInt32(clamping: packet.originalLength)
            )
        )
    }

    mutating func finish() throws { try output.finish() }
}
