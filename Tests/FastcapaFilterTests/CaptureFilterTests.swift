import FastcapaFilter
import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

@Suite struct CaptureFilterTests {
    @Test(arguments: [
        ("tcp prt 80", FilterError.Offending.word("prt", offset: 4)),
        ("ip and and tcp", .word("and", offset: 7)),
        ("vlan and tcp port 443 )", .word(")", offset: 22)),
        ("tcp port", .end),
        ("(tcp", .end),
        ("host nosuch.invalid", .word("nosuch.invalid", offset: 5)),
    ])
    func refusedExpressionsCarryLibpcapsMessageAndWhere(_ expression: String, _ offending: FilterError.Offending) {
        do {
            _ = try CaptureFilter(expression)
            Issue.record("'\(expression)' compiled")
        } catch {
            #expect(error.expression == expression)
            #expect(error.offending == offending, "\(error)")
            #expect(!error.message.isEmpty && error.description.hasPrefix("libpcap: \(error.message)"))
        }
    }

    @Test func aMessageWithoutAPlaceSaysWhatLibpcapSaid() {
        #expect(throws: FilterError.self) { try CaptureFilter("tcp port 99999") }
        do { _ = try CaptureFilter("tcp port 99999") } catch {
            #expect(error.description == "libpcap: illegal port number 99999 > 65535")
        }
    }

    @Test func compiledOnceMatchesManyFrames() throws {
        let filter = try CaptureFilter("udp port 53")
        #expect(filter.instructionCount > 1)
        #expect(filter.disassembly.first?.hasPrefix("(000) ldh") == true)
        let dns = FrameBuilder().ip(
            from: "10.0.0.1",
            to: "10.0.0.53",
            .udp(UDPDatagram(sourcePort: 40_000, destinationPort: 53, payload: [1, 2, 3]))
        )
        let ntp = FrameBuilder().ip(
            from: "10.0.0.1",
            to: "10.0.0.53",
            .udp(UDPDatagram(sourcePort: 40_000, destinationPort: 123, payload: [1, 2, 3]))
        )
        for _ in 0..<3 {
            #expect(filter.matches(dns))
            #expect(!filter.matches(ntp))
        }
        #expect(!filter.matches([]), "an empty frame")
        #expect(!filter.matches(Array(dns.prefix(30))), "a frame cut before the ports")
    }

    @Test func theOriginalLengthDecidesLengthTests() throws {
        let filter = try CaptureFilter("greater 1000")
        let head = [UInt8](repeating: 0, count: 96)
        #expect(!filter.matches(head))
        #expect(filter.matches(head, originalLength: 1514), "captured 96 of 1514 bytes")
    }

    @Test func emptyExpressionAcceptsEveryFrame() throws {
        let filter = try CaptureFilter("")
        #expect(filter.matches([]) && filter.matches([1, 2, 3]))
    }

    /// pcap_offline_filter agrees with tcpdump on the protocol mix (the
    /// matcher `consume --filter` will use).
    @Test(arguments: ["tcp port 443 or udp port 53", "vlan", "ip6 and tcp", "greater 600", "not arp"])
    func matchesAsTcpdumpDoes(_ expression: String) throws {
        let records = SyntheticCaptures.protocolMix(count: 300, seed: 3)
        let file = TestFiles.temporaryDirectory().appendingPathComponent("mix.pcap").path
        try SyntheticCaptures.write(records, to: file)
        let output = TestFiles.temporaryDirectory().appendingPathComponent("kept.pcap").path
        let tcpdump = Process()
        tcpdump.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tcpdump.arguments = ["tcpdump", "-Z", "root", "-r", file, "-w", output, expression]
        tcpdump.standardError = FileHandle.nullDevice
        try tcpdump.run()
        tcpdump.waitUntilExit()
        let kept = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))).records
        let filter = try CaptureFilter(expression)
        let matched = records.filter { filter.matches($0.data, originalLength: Int($0.originalLength)) }
        #expect(matched == kept)
        #expect(!kept.isEmpty)
    }
}
