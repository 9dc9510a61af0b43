import FastcapaKafka
import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

/// The bundle format (`MessageContract.Bundle`, MessageFormat.md, "Bundles"):
/// written into a caller's buffer, read back record for record, malformed
/// values refused, and a pcap header plus a value read by tcpdump.
@Suite struct BundleFormatTests {
    typealias Bundle = MessageContract.Bundle

    /// Packets of every size from 0 to 65,535 bytes, some cut (original length above the captured one).
    static func packets(_ count: Int, seed: UInt64 = 29) -> [Bundle.Packet] {
        var generator = SeededGenerator(seed: seed)
        let sizes = [0, 1, 14, 60, 1514, 9000, 65_535]
        return (0..<count).map { index in
            let size = index < sizes.count ? sizes[index] : Int.random(in: 0...2000, using: &generator)
            let frame = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let cut = index % 3 == 2
            return Bundle.Packet(
                micros: 1_700_000_000_000_000 + UInt64(index) * 1_234_567 + UInt64(index % 7),
                originalLength: cut ? size + 100 : size,
                frame: frame
            )
        }
    }

    @Test func namesAreAsDocumented() {
        #expect(Bundle.formatHeader == "fastcapa.format")
        #expect(Bundle.format == "pcap-records-v1")
        #expect(Bundle.countHeader == "fastcapa.count")
        #expect(Bundle.recordHeaderLength == 16)
    }

    /// MessageFormat.md's worked example, byte for byte.
    @Test func theDocumentedExampleIsTheseBytes() throws {
        let packets = [
            Bundle.Packet(micros: 1_714_564_800_000_001, originalLength: 4, frame: [0xDE, 0xAD, 0xBE, 0xEF]),
            Bundle.Packet(micros: 1_714_564_800_250_000, originalLength: 1514, frame: [0x01, 0x02]),
        ]
        let value = Bundle.value(packets)
        let expected: [UInt8] = [
            0xC0, 0x2E, 0x32, 0x66, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
            0xDE, 0xAD, 0xBE, 0xEF,
            0xC0, 0x2E, 0x32, 0x66, 0x90, 0xD0, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0xEA, 0x05, 0x00, 0x00,
            0x01, 0x02,
        ]
        #expect(value == expected)
        #expect(try Bundle.packets(in: value, count: "2", partition: 0, offset: 0, topic: "pcap") == packets)
    }

    @Test(arguments: [0, 1, 2, 7, 256])
    func packetsComeBackRecordForRecord(count: Int) throws {
        let packets = Self.packets(count)
        let value = Bundle.value(packets)
        #expect(value.count == packets.reduce(0) { $0 + 16 + $1.frame.count })
        guard count > 0 else {
            // An empty bundle is never written, and refused when read.
            #expect(throws: Bundle.Refusal.self) {
                try Bundle.packets(in: value, count: "0", partition: 1, offset: 2, topic: "pcap")
            }
            return
        }
        let back = try Bundle.packets(in: value, count: "\(count)", partition: 0, offset: 0, topic: "pcap")
        #expect(back == packets)
        // Without the count header the records alone decide.
        #expect(try Bundle.packets(in: value, count: nil, partition: 0, offset: 0, topic: "pcap") == packets)
    }

    /// The encoder writes into a fixed buffer: a record that does not fit is refused and nothing is written.
    @Test func aRecordThatDoesNotFitIsRefusedWhole() {
        let capacity = 100
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 1)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0xAA, count: capacity)
        var used = 0
        func append(_ frame: [UInt8], micros: UInt64, originalLength: Int) -> Bool {
            frame.withUnsafeBytes {
                Bundle.append(
                    micros: micros,
                    originalLength: originalLength,
                    frame: $0.baseAddress,
                    length: $0.count,
                    into: buffer,
                    capacity: capacity,
                    used: &used
                )
            }
        }
        let frame = [UInt8](repeating: 7, count: 60)
        #expect(append(frame, micros: 5_000_001, originalLength: 60))
        #expect(used == 76)
        #expect(!append(frame, micros: 5_000_002, originalLength: 60))
        #expect(used == 76)
        #expect(UnsafeRawBufferPointer(start: buffer + 76, count: capacity - 76).allSatisfy { $0 == 0xAA })
        // What fits exactly fits.
        let small = [UInt8](repeating: 1, count: capacity - 76 - 16)
        let exact = append(small, micros: 5_000_003, originalLength: 0)
        #expect(exact)
        #expect(used == capacity)
        let value = Array(UnsafeRawBufferPointer(start: buffer, count: used))
        let back = try? Bundle.packets(in: value, count: "2", partition: 0, offset: 0, topic: "pcap")
        #expect(back?.map(\.micros) == [5_000_001, 5_000_003])
        #expect(back?.map(\.originalLength) == [60, small.count])
    }

    @Test func malformedValuesAreRefusedNamingWhereAndWhy() throws {
        let value = Bundle.value(Self.packets(3))
        func refusal(_ value: [UInt8], count: String? = nil) -> String? {
            do {
                _ = try Bundle.packets(in: value, count: count, partition: 4, offset: 912, topic: "pcap")
                return nil
            } catch {
                return error.description
            }
        }
        let place = "the bundle at partition 4 offset 912 of topic 'pcap' is malformed: "
        // Every cut short of the whole value is refused (the record's header, or its bytes, run past the end).
        for length in 1..<value.count where ![16, 33].contains(length) {
            let problem = refusal(Array(value[..<length]))
            #expect(problem?.hasPrefix(place) == true, "cut at \(length): \(problem ?? "accepted")")
        }
        #expect(refusal(Array(value[..<10]))!.contains("record 0 at byte 0 has 10 bytes of its 16-byte header"))
        #expect(
            refusal(Array(value[..<32]))!.contains("record 1 at byte 16 has a captured length of 1 but only 0 bytes")
        )
        #expect(refusal([])!.contains("its value holds no record"))
        #expect(refusal(value, count: "4")!.contains("its fastcapa.count header says 4 packets, its value holds 3"))
        #expect(refusal(value, count: "three")!.contains("its fastcapa.count header is 'three', not a packet count"))
        var larger = value
        larger[8] = 2  // record 0: captured 2 > original 0
        #expect(refusal(larger)!.contains("record 0 at byte 0 has a captured length of 2, more than its original"))
        var late = value
        late[4...7] = [0x40, 0x42, 0x0F, 0x00]  // 1,000,000 µs
        #expect(refusal(late)!.contains("record 0 at byte 0 has 1000000 microseconds"))
    }

    @Test func anotherFormatIsRefusedAndNoMarkerIsASinglePacket() throws {
        #expect(try !Bundle.isBundle(marker: nil, partition: 0, offset: 0, topic: "pcap"))
        #expect(try Bundle.isBundle(marker: Array("pcap-records-v1".utf8), partition: 0, offset: 0, topic: "pcap"))
        #expect(throws: Bundle.Refusal.self) {
            try Bundle.isBundle(marker: Array("pcap-records-v2".utf8), partition: 1, offset: 5, topic: "pcap")
        }
    }

    /// A pcap global header (`PcapFile.header`) and a bundle's value make a
    /// file tcpdump reads: the same times, original lengths and bytes.
    @Test func aPcapHeaderAndAValueAreAFileTcpdumpReads() throws {
        // tcpdump stops at a record of 0 bytes ("Invalid header"), and prints frames under 14 bytes without
        // their addresses: frames of 14 bytes and more here (the round trip above covers the rest).
        // Their EtherType is IEEE's local experimental one, so that tcpdump's "length" is the frame's
        // (on an 802.3 frame it prints the length field's value).
        let packets = Self.packets(40).filter { $0.frame.count >= 14 }.map { packet in
            var packet = packet
            packet.frame[12] = 0x88
            packet.frame[13] = 0xB5
            return packet
        }
        #expect(packets.contains { $0.frame.count == 65_535 })
        #expect(packets.contains { $0.originalLength > $0.frame.count })
        let file = TestFiles.temporaryDirectory().appendingPathComponent("bundle.pcap")
        let bytes = PcapFile.header(linkType: 1, snapLength: 262_144) + Bundle.value(packets)
        try Data(bytes).write(to: file)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tcpdump", "-r", file.path, "-tt", "-nn", "-xx", "-e"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)

        // One line per packet (time, the link header, "length N:" its original length; the first
        // "length": what follows it may print the lengths of inner headers), then its bytes in hex lines.
        var read: [(time: String, length: Int, bytes: [UInt8])] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("\t") {
                let hex = line.split(separator: ":", maxSplits: 1)[1].filter { !$0.isWhitespace }
                var index = hex.startIndex
                while index < hex.endIndex {
                    let next = hex.index(index, offsetBy: 2)
                    read[read.count - 1].bytes.append(UInt8(hex[index..<next], radix: 16)!)
                    index = next
                }
            } else {
                let time = String(line.split(separator: " ")[0])
                let length = line.ranges(of: "length ").first.map { line[$0.upperBound...].prefix { $0.isNumber } }
                read.append((time, Int(length ?? "") ?? -1, []))
            }
        }
        #expect(read.count == packets.count)
        for (record, packet) in zip(read, packets) {
            let seconds = packet.micros / 1_000_000
            let fraction = String(packet.micros % 1_000_000)
            #expect(record.time == "\(seconds).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)")
            #expect(record.length == packet.originalLength)
            #expect(record.bytes == packet.frame)
        }
    }
}
