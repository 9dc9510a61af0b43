import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// Records through net_pcap into a broker on loopback, read back by kcat:
    /// each record exactly once, byte-identical, keyed by its pcap time, in order.
    @Suite struct Fidelity {
        /// Captures built here: every frame size from 0 to 65,535 bytes (chains
        /// included), a record cut at capture, VLAN/QinQ, fragments, IPv6, ARP,
        /// ICMP, times at the epoch and past 2038 up to 2106, plus a realistic
        /// protocol mix and records over 65,535 bytes: those net_pcap delivers
        /// whole (65,536 up to 67,583 bytes, where its 16-bit copy count wraps
        /// and still adds up) come back whole; longer ones (BIG TCP's 80,000)
        /// are counted as malformed, never published short; the start warns of
        /// both these and the truncated record, naming the file.
        @Test func builtCapturesComeBackExactlyOnce() throws {
            let long = [65_536, 65_600, 67_583, 67_584, 80_000, 131_000].enumerated().map { i, count in
                PcapRecord(
                    micros: SyntheticCaptures.Times.june2024 + 9_000_000 + UInt64(i),
                    data: FrameBuilder.raw(count: count, seed: UInt64(i + 2))
                )
            }
            let records = SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 300) + long
            let results = try Self.captureAndReadBack(records)
            #expect(results.accounting["drop_malformed"] == 3, "67,584, 80,000 and 131,000 bytes")
            #expect(results.received.contains { $0.bytes.isEmpty }, "empty records arrive as empty messages")
            for count in [65_535, 65_536, 65_600, 67_583] {
                #expect(results.received.contains { $0.bytes.count == count }, "frames of \(count) bytes arrive whole")
            }
            #expect(
                results.stderr.contains(
                    "3 records are 67584 bytes or longer (the longest 131000), which DPDK 22.11's net_pcap cannot deliver whole"
                ),
                "\(results.stderr)"
            )
            let truncated = records.filter { $0.originalLength > $0.data.count }.count
            #expect(truncated == 1)
            #expect(results.stderr.contains("1 of \(records.count) records are truncated"), "\(results.stderr)")
            #expect(
                results.received.contains { $0.micros == SyntheticCaptures.Times.endOfRange },
                "2106 keeps its value"
            )
            #expect(
                results.received.contains { $0.micros == SyntheticCaptures.Times.epoch },
                "the epoch keeps its value"
            )
        }

        /// The same with every record of the shared corpus (tcpdump's test captures).
        @Test(.sharedCorpus) func everySharedCaptureRecordComesBackExactlyOnce() throws {
            let records = try SharedCorpus.records()
            #expect(records.count == 4798, "the shared captures changed: update this count")
            let results = try Self.captureAndReadBack(records)
            #expect(results.received.contains { $0.bytes.count > 9_000 }, "frames larger than one mbuf arrive whole")
            #expect(
                results.received.contains { $0.micros >= UInt64(1 << 31) * 1_000_000 },
                "times past 2038 keep their value"
            )
        }

        struct Record: Equatable {
            var micros: UInt64
            var bytes: [UInt8]
        }

        struct Results {
            var accounting: [String: Int]
            var received: [Record]
            var stderr: String
        }

        /// Captures `records` (one net_pcap file, one queue, one transmit worker,
        /// one partition; `coScheduled`: its receive and transmit lcores on one CPU),
        /// checks what every capture must hold, and returns what kcat read back.
        static func captureAndReadBack(_ records: [PcapRecord], coScheduled: Bool = false) throws -> Results {
            let directory = TestFiles.temporaryDirectory()
            let path = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(path)"], coScheduled: coScheduled),
                [
                    "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "-X",
                    "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.runtimeFolderRemoved)
            let accounting = result.accounting
            #expect(accounting["received"] == records.count)
            #expect(accounting["nic_received"] == records.count)
            #expect(accounting["in_flight"] == 0)
            #expect(result.balanced)

            let messages = try Harness.kcatRead(broker: broker.address)
            #expect(messages.count == accounting["delivered"])
            #expect(messages.allSatisfy { $0.key?.count == 8 })

            // net_pcap (DPDK 22.11) cannot deliver records of 67,584 bytes and more
            // whole (65,536 + one mbuf's 2,048): its segments hold less than the
            // frame's length. The probe must count exactly those as malformed,
            // never publish them short.
            let malformed = accounting["drop_malformed"] ?? -1
            #expect(accounting["dropped"] == malformed)
            #expect(malformed == records.filter { $0.data.count >= 67_584 }.count)

            // The topic is the capture, in order, less the malformed records.
            let sent = records.map { Record(micros: $0.micros, bytes: $0.data) }
            let received = messages.map { Record(micros: $0.micros ?? 0, bytes: $0.value) }
            var nextIndex = 0
            var outOfOrder = 0
            for message in received {
                guard let index = sent[nextIndex...].firstIndex(of: message) else {
                    outOfOrder += 1
                    continue
                }
                for skipped in sent[nextIndex..<index] {
                    #expect(
                        skipped.bytes.count >= 67_584,
                        "record of \(skipped.bytes.count) bytes at \(skipped.micros) µs was lost"
                    )
                }
                nextIndex = index + 1
            }
            #expect(outOfOrder == 0, "messages not matching a record in capture order")
            #expect(records.count - messages.count == malformed)
            return Results(accounting: accounting, received: received, stderr: result.stderr)
        }
    }
}
