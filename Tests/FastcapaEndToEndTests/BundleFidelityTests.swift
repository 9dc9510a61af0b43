import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// Captures published as bundles (`--bundle-packets`, MessageFormat.md,
    /// "Bundles"): the built and the shared captures come back through `consume`
    /// record for record and through the kcat recipe as a file tcpdump reads,
    /// whatever the bundle size and linger (1: one packet per message, the
    /// default); a lone packet leaves after its linger, not at the stop; a
    /// bundle that times out counts each of its packets. (The failure suite's
    /// fatal errors and outages, and Reliability's random stops, run with bundles too.)
    @Suite struct BundleFidelity {
        struct Case: CustomTestStringConvertible, Sendable {
            var packets: Int
            var lingerMicros: Int
            var testDescription: String { "bundles of \(packets), linger \(lingerMicros) us" }
            var options: [String] {
                ["--bundle-packets", "\(packets)", "--bundle-linger-us", "\(lingerMicros)"]
            }
        }

        static let cases = [
            Case(packets: 1, lingerMicros: 1000),
            Case(packets: 7, lingerMicros: 1000),
            Case(packets: 7, lingerMicros: 1),
            Case(packets: 256, lingerMicros: 100),
            Case(packets: 256, lingerMicros: 1_000_000),
        ]

        /// Records net_pcap (DPDK 22.11) cannot deliver whole: counted as malformed, never published.
        static let undeliverable = 67_584

        /// The built captures: every frame size up to 65,535 bytes and a little beyond,
        /// a record cut at capture, the protocol mix, the epoch and 2106.
        static func builtRecords() -> [PcapRecord] {
            let long = [65_536, 67_583, 80_000].enumerated().map { i, count in
                PcapRecord(
                    micros: SyntheticCaptures.Times.june2024 + 9_000_000 + UInt64(i),
                    data: FrameBuilder.raw(count: count, seed: UInt64(i + 2))
                )
            }
            let all = SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 600) + long
            // Empty records last: tcpdump stops reading a file at one.
            return all.filter { !$0.data.isEmpty } + all.filter { $0.data.isEmpty }
        }

        @Test(arguments: cases)
        func builtCapturesComeBackRecordForRecord(_ bundle: Case) throws {
            try Self.captureAndCompare(Self.builtRecords(), bundle)
        }

        @Test(.sharedCorpus, arguments: [cases[1], cases[3]])
        func sharedCapturesComeBackRecordForRecord(_ bundle: Case) throws {
            try Self.captureAndCompare(try SharedCorpus.records(), bundle)
        }

        /// Captures `records` with `bundle`'s options into one partition, then reads
        /// the topic back with `consume` and with the kcat recipe.
        static func captureAndCompare(_ records: [PcapRecord], _ bundle: Case) throws {
            let directory = TestFiles.temporaryDirectory()
            let path = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(path)"]),
                [
                    "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "-X",
                    "bootstrap.servers=\(broker.address)",
                ] + bundle.options
            )
            let name = bundle.testDescription
            #expect(result.status == 0, "\(name): \(result.stderr.suffix(2000))")
            let accounting = result.accounting
            // net_pcap hands over the captured bytes alone: a record cut at capture arrives as a frame of that length.
            let expected = records.filter { $0.data.count < Self.undeliverable }.map {
                PcapRecord(micros: $0.micros, data: $0.data, originalLength: UInt32($0.data.count))
            }
            #expect(result.balanced, "\(name): \(result.stdout)")
            #expect(accounting["received"] == records.count, "\(name)")
            #expect(accounting["in_flight"] == 0, "\(name)")
            #expect(accounting["delivered"] == expected.count, "\(name)")
            #expect(accounting["drop_malformed"] == records.count - expected.count, "\(name)")

            // consume: every packet, in receive order (one partition), with its time and original length.
            let back = try Consume.consumePcap(broker, to: directory.appendingPathComponent("back.pcap").path)
            Self.expectSame(back.records, expected, name)
            #expect(!result.stderr.contains("bundle pool:"), "\(name): every buffer handed back once")
            let bundles = accounting["bundles_sent"] ?? 0
            if bundle.packets == 1 {
                #expect(bundles == 0, "\(name): one packet per message, no bundle")
            } else {
                #expect(bundles >= (expected.count + bundle.packets - 1) / bundle.packets, "\(name): \(bundles)")
                #expect(bundles <= expected.count, "\(name): \(bundles) bundles")
                #expect(
                    back.stderr.contains(
                        "\(expected.count) packets written of \(bundles) messages read (\(bundles) of them bundles of \(expected.count) packets)"
                    ),
                    "\(name): \(back.stderr)"
                )
            }

            // The kcat recipe (bundles only): the partition as a pcap file, read by tcpdump up to its first empty record.
            guard bundle.packets > 1 else { return }
            let file = directory.appendingPathComponent("kcat.pcap").path
            let recipe = try BundleRead.kcatRecipe(broker: broker.address, partition: 0, file: file)
            let made = try Harness.run("/bin/sh", ["-c", recipe])
            #expect(made.status == 0, "\(name): \(made.stderr)")
            let kcat = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))).records
            Self.expectSame(kcat, expected, "\(name), kcat")
            // tcpdump prints the file as it prints the capture itself (up to the first empty record, where it stops).
            let readable = Array(expected.prefix { !$0.data.isEmpty })
            try #require(!readable.isEmpty, "\(name): a capture that starts with an empty record")
            let reference = try Harness.writePcap(readable, to: directory, name: "reference.pcap")
            let flags = ["-nn", "-tt", "-c", "\(readable.count)", "-r"]
            let tcpdump = try Harness.run("/usr/bin/env", ["tcpdump"] + flags + [file])
            let oracle = try Harness.run("/usr/bin/env", ["tcpdump"] + flags + [reference])
            #expect(tcpdump.status == 0 && oracle.status == 0, "\(name): \(tcpdump.stderr) \(oracle.stderr)")
            #expect(!tcpdump.stdout.isEmpty && tcpdump.stdout == oracle.stdout, "\(name): tcpdump reads the capture")
        }

        /// Record for record, naming the first that differs (the corpora are too long to print whole).
        static func expectSame(_ back: [PcapRecord], _ records: [PcapRecord], _ what: String) {
            #expect(back.count == records.count, "\(what): \(back.count) records back of \(records.count)")
            guard let index = records.indices.first(where: { $0 < back.count && back[$0] != records[$0] }) else {
                return
            }
            let (got, sent) = (back[index], records[index])
            let backText = "\(got.micros) us, \(got.data.count) of \(got.originalLength) bytes back"
            let sentText = "\(sent.micros) us, \(sent.data.count) of \(sent.originalLength) bytes sent"
            Issue.record("\(what): record \(index) differs: \(backText); \(sentText)")
        }

        /// Three packets and a linger of 200 ms: their bundle leaves after the linger,
        /// long before the idle exit's stop would flush it.
        @Test func aLoneBundleLeavesAfterItsLinger() throws {
            let records = Array(SyntheticCaptures.protocolMix(count: 3))
            let directory = TestFiles.temporaryDirectory()
            let path = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let trace = directory.appendingPathComponent("trace.txt").path
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(path)"]),
                [
                    "--idle-exit", "4", "--stats-interval", "0", "--counter-trace", trace, "-X",
                    "bootstrap.servers=\(broker.address)", "--bundle-packets", "256", "--bundle-linger-us", "200000",
                ]
            )
            #expect(result.status == 0, "\(result.stderr.suffix(2000))")
            #expect(result.balanced && result.accounting["delivered"] == 3 && result.accounting["bundles_sent"] == 1)
            // Trace lines: ms received delivered restarts.
            let samples = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map {
                $0.split(separator: " ").compactMap { Int($0) }
            }.filter { $0.count == 4 }
            let received = try #require(samples.first { $0[1] == 3 })
            let delivered = try #require(samples.first { $0[2] == 3 })
            let waited = delivered[0] - received[0]
            #expect(waited >= 150 && waited < 2_000, "delivered \(waited) ms after receipt")
        }

        private static let faultOptions = ["--bundle-packets", "64", "--bundle-linger-us", "2000"]

        @Test func deliveryTimeoutsCountEveryPacketOfABundle() async throws {
            let run = try await Failures.FaultRun(
                "delivery timeouts (message.timeout.ms 300), bundles of 64",
                Self.faultOptions + ["-X", "message.timeout.ms=300"]
            )
            run.broker.send("down 1")
            try await Task.sleep(for: .seconds(2))
            run.broker.send("up 1")
            try await Task.sleep(for: .seconds(3))
            let result = run.stop()
            run.checkAndReport(result, restarts: 0, recoveryMs: nil)
            let failed = result.accounting["drop_delivery_failed"] ?? 0
            #expect(failed > 64, "every packet of a timed-out bundle counts: \(failed)")
        }
    }
}
