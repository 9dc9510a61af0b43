import Foundation
import PcapFormat

/// Where `fastcapa consume` writes the packets it reads.
protocol PacketSink {
    mutating func write(micros: UInt64, frame: [UInt8]) throws
    mutating func close() throws
}

/// Standard output, or a new file at `path`.
func openOutput(_ path: String?) throws -> FileHandle {
    guard let path else { return .standardOutput }
    guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path)
    else {
        throw PcapError(description: "cannot create '\(path)': check the folder exists and is writable")
    }
    return handle
}

/// One line per packet, as `tcpdump -r` prints: time, length, first bytes.
struct TextSink: PacketSink {
    let handle: FileHandle

    init(path: String?) throws {
        handle = try openOutput(path)
    }

    static func line(micros: UInt64, frame: [UInt8]) -> String {
        let seconds = time_t(micros / 1_000_000)
        var parts = tm()
        var copy = seconds
        gmtime_r(&copy, &parts)
        let time = String(
            format: "%04d-%02d-%02d %02d:%02d:%02d.%06d",
            parts.tm_year + 1900,
            parts.tm_mon + 1,
            parts.tm_mday,
            parts.tm_hour,
            parts.tm_min,
            parts.tm_sec,
            Int(micros % 1_000_000)
        )
        let head = frame.prefix(16).map { String(format: "%02x", $0) }.joined(separator: " ")
        return "\(time) length \(frame.count): \(head)\(frame.count > 16 ? " ..." : "")"
    }

    mutating func write(micros: UInt64, frame: [UInt8]) throws {
        handle.write(Data((Self.line(micros: micros, frame: frame) + "\n").utf8))
    }

    mutating func close() throws {}
}

/// A classic pcap file (Ethernet, microseconds); each packet's time is its key.
struct PcapSink: PacketSink {
    let handle: FileHandle

    init(path: String?) throws {
        handle = try openOutput(path)
        handle.write(Data(PcapFile.header(linkType: 1, snapLength: 262_144)))
    }

    mutating func write(micros: UInt64, frame: [UInt8]) throws {
        handle.write(Data(PcapFile.recordBytes(PcapRecord(micros: micros, data: frame))))
    }

    mutating func close() throws {}
}

/// pcapng (Ethernet, microseconds); each packet's time is its key.
struct PcapngSink: PacketSink {
    let handle: FileHandle

    init(path: String?) throws {
        handle = try openOutput(path)
        handle.write(Data(Pcapng.sectionHeader()))
    }

    mutating func write(micros: UInt64, frame: [UInt8]) throws {
        handle.write(Data(Pcapng.enhancedPacket(micros: micros, data: frame)))
    }

    mutating func close() throws {}
}
