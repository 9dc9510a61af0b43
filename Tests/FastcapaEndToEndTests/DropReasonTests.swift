import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// Each way a packet can be lost after the NIC is counted under its own
    /// reason, and the books still balance.
    @Suite struct DropReasons {
        /// librdkafka's queue stays full (no broker, a 100-message queue): after
        /// the retry budget the transmit worker drops and counts, receive goes on.
        @Test func queueFullDropsAreCounted() throws {
            let result = try Harness.probe(
                for: 2,
                eal: Harness.eal(lcores: 3, vdevs: ["net_null0"]),
                [
                    "--stats-interval", "0", "--drain-timeout", "1", "--queue-full-retries", "2",
                    "-X", "bootstrap.servers=127.0.0.1:1", "-X", "queue.buffering.max.messages=100",
                ]
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            let accounting = result.accounting
            #expect((accounting["drop_queue_full"] ?? 0) > 0)
            #expect((accounting["queue_full_retries"] ?? 0) > 0)
            #expect(accounting["in_flight"] == 0)
            #expect(accounting["delivered"] == 0)
        }

        /// --sink null frees packets after the ring (receive-path benchmarks): they are
        /// counted as null_sink, nothing reaches Kafka, and the books balance.
        @Test func nullSinkCountsWhatItFrees() throws {
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                for: 2,
                eal: Harness.eal(lcores: 3, vdevs: ["net_null0"]),
                [
                    "--sink", "null", "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            #expect((result.accounting["drop_null_sink"] ?? 0) > 0)
            #expect(result.accounting["produced"] == 0)
            #expect(try Harness.kcatCount(broker: broker.address, partitions: 1) == 0)
        }

        /// Frames larger than message.max.bytes are refused by librdkafka and
        /// counted as too large; everything else arrives.
        @Test func oversizedFramesAreCountedAsTooLarge() throws {
            let records = SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 500)
            let path = try Harness.writePcap(records, to: TestFiles.temporaryDirectory(), name: "input.pcap")
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(path)"]),
                [
                    "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait",
                    "-X", "bootstrap.servers=\(broker.address)", "-X", "message.max.bytes=1000",
                ]
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            let accounting = result.accounting
            let tooLarge = accounting["drop_too_large"] ?? 0
            #expect(tooLarge > 0)
            #expect(tooLarge <= records.filter { $0.data.count > 900 }.count)
            let messages = try Harness.kcatRead(broker: broker.address)
            #expect(messages.count == accounting["delivered"])
            #expect(messages.allSatisfy { $0.value.count <= 1000 })
            #expect(messages.count + (accounting["dropped"] ?? 0) == records.count)
        }

        /// --snap-length cuts frames: each message is the prefix of its record,
        /// and the cut ones are counted as truncated, not dropped.
        @Test func snapLengthCutsAndCounts() throws {
            let records = SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 500)
            let path = try Harness.writePcap(records, to: TestFiles.temporaryDirectory(), name: "input.pcap")
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(path)"]),
                [
                    "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "--snap-length", "100",
                    "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(result.status == 0, "\(result.stderr)")
            let accounting = result.accounting
            #expect(accounting["dropped"] == 0, "chains are cut before they are read: none is malformed")
            #expect(accounting["truncated"] == records.filter { $0.data.count > 100 }.count)
            let messages = try Harness.kcatRead(broker: broker.address)
            #expect(messages.count == records.count)
            for (message, record) in zip(messages, records) {
                #expect(message.value == Array(record.data.prefix(100)))
                #expect(message.micros == record.micros)
            }
        }
    }
}
