import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    @Suite struct Fidelity {
        /// Every record of ../shared/pcaps (empty records, runts, 80 KB frames,
        /// truncated captures, both byte orders) through net_pcap into a broker on
        /// loopback, read back by kcat: each record exactly once, byte-identical,
        /// keyed by its pcap time, in order.
        @Test func everySharedCaptureRecordComesBackExactlyOnce() throws {
            let directory = Harness.temporaryDirectory()
            let (path, records) = try Harness.mergedSharedCaptures(into: directory)
            #expect(records.count == 4798, "the shared captures changed: update this count")
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(path)"]),
                ["--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "-X", "bootstrap.servers=\(broker.address)"])
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

            // net_pcap (DPDK 22.11) cannot deliver records over 65,535 bytes whole:
            // its segments hold less than the frame's length. The probe must count
            // them as malformed, never publish them short.
            let malformed = accounting["drop_malformed"] ?? -1
            #expect(accounting["dropped"] == malformed)
            let oversized = records.filter { $0.data.count > 65_535 }
            #expect(malformed <= oversized.count)

            // One partition, one transmit worker: the topic is the capture, in order,
            // less the malformed records.
            let sent = records.map { Record(micros: $0.micros, bytes: $0.data) }
            let received = messages.map { Record(micros: $0.micros ?? 0, bytes: $0.value) }
            let missing = sent
            var nextIndex = 0
            var outOfOrder = 0
            for message in received {
                guard let index = missing[nextIndex...].firstIndex(of: message) else {
                    outOfOrder += 1
                    continue
                }
                for skipped in missing[nextIndex..<index] {
                    #expect(skipped.bytes.count > 65_535, "record of \(skipped.bytes.count) bytes at \(skipped.micros) µs was lost")
                }
                nextIndex = index + 1
            }
            #expect(outOfOrder == 0, "messages not matching a record in capture order")
            #expect(records.count - messages.count == malformed)
            // The edge cases the captures hold made it through.
            #expect(received.contains { $0.bytes.isEmpty }, "empty records arrive as empty messages")
            #expect(received.contains { $0.bytes.count > 9_000 }, "frames larger than one mbuf arrive whole")
            #expect(received.contains { $0.micros >= UInt64(1 << 31) * 1_000_000 }, "times past 2038 keep their value")
        }

        struct Record: Equatable {
            var micros: UInt64
            var bytes: [UInt8]
        }
    }
}
