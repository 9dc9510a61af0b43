import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

@Suite struct PcapFormatTests {
    @Test func pcapRoundTripsBothByteOrders() throws {
        let records = [
            PcapRecord(micros: 1_500_000_000_123_456, data: [1, 2, 3], originalLength: 60),
            PcapRecord(micros: 0, data: []),
            PcapRecord(micros: 4_294_967_295_999_999, data: Array(repeating: 7, count: 70_000)),
        ]
        let file = PcapFile(records: records)
        let parsed = try PcapFile(bytes: file.bytes())
        #expect(parsed.records == records)
        // The same file written big-endian by hand.
        var big: [UInt8] = [0xA1, 0xB2, 0xC3, 0xD4, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 1]
        big += [0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 2, 0xAB, 0xCD]
        let bigParsed = try PcapFile(bytes: big)
        #expect(bigParsed.records == [PcapRecord(micros: 10_000_020, data: [0xAB, 0xCD])])
        #expect(throws: PcapError.self) { try PcapFile(bytes: Array(big.dropLast())) }
        #expect(throws: PcapError.self) { try PcapFile(bytes: [1, 2, 3]) }
    }

    @Test(.sharedCorpus) func sharedCapturesParse() throws {
        let files = try SharedCorpus.files()
        #expect(files.count == 196)
        var total = 0
        for file in files {
            total += try PcapFile(bytes: [UInt8](Data(contentsOf: file))).records.count
        }
        #expect(total == 4798)
    }
}

/// `consume --format text` against tcpdump's own lines on the same capture.
@Suite struct PacketTextTests {
    /// tcpdump's line without what PacketText leaves out: TCP options, and what
    /// its application decoders print after the length.
    static func comparable(_ line: Substring) -> String {
        var text = String(line)
        if let options = text.range(of: ", options ["), let end = text[options.upperBound...].firstIndex(of: "]") {
            text.removeSubrange(options.lowerBound...end)
        }
        if text.contains(": Flags ["), let length = text.range(of: ", length ") {
            let digits = text[length.upperBound...].prefix { $0.isNumber }
            text = String(text[..<length.upperBound]) + digits
        }
        return text
    }

    @Test func linesAreTcpdumpsForTheCommonProtocols() throws {
        let records = SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 1500, seed: 5)
        let path = TestFiles.temporaryDirectory().appendingPathComponent("text.pcap").path
        try SyntheticCaptures.write(records, to: path)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tcpdump", "-tttt", "-nn", "-S", "-r", path]
        process.environment = ["TZ": "UTC", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == records.count)
        var compared = 0
        var kinds = Set<String>()
        for (line, record) in zip(lines, records) where !line.hasPrefix("[Invalid header") {
            let full = PacketText.line(micros: record.micros, frame: record.data, originalLength: record.data.count)
            // tcpdump cannot print times past 2038 here: the rest of its line still counts.
            let unconverted = "[Error converting time] "
            if !line.hasPrefix(unconverted) {
                #expect(full.prefix(27) == line.prefix(27), "the time: \(full) / \(line)")
            }
            let ours = String(full.dropFirst(27))
            let theirs = Self.comparable(
                line.hasPrefix(unconverted) ? line.dropFirst(unconverted.count) : line.dropFirst(27)
            )
            let decodedByApplication =
                !theirs.contains(": Flags [") && !theirs.contains("UDP, length") && !theirs.contains("ICMP")
                && !theirs.hasPrefix("ARP, ")
            // Our hex fallback, or one of tcpdump's application decoders (DNS, NTP...): not compared.
            if ours.hasPrefix("length ") || decodedByApplication {
                continue
            }
            #expect(ours == theirs, "ours:    \(ours)\ntcpdump: \(line)")
            compared += 1
            kinds.insert(
                theirs.contains("Flags")
                    ? "tcp"
                    : theirs.contains("UDP")
                        ? "udp" : theirs.contains("ICMP6") ? "icmp6" : theirs.contains("ICMP") ? "icmp" : "arp"
            )
            if theirs.hasPrefix("IP6 ") { kinds.insert("ipv6") }
        }
        print(
            "text: \(compared) of \(records.count) lines equal to tcpdump's (\(kinds.sorted().joined(separator: ", ")))"
        )
        #expect(compared > records.count * 3 / 4, "\(compared) of \(records.count) lines compared")
        #expect(kinds == ["tcp", "udp", "icmp", "icmp6", "arp", "ipv6"], "\(kinds)")
    }
}
