import FastcapaCapture
import FastcapaKafka
import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// The transmit side of bundles (`--bundle-packets`): a generated capture
    /// through net_pcap into the embedded broker comes back through `consume`
    /// record for record (bytes, times, original lengths of snap-cut frames),
    /// each message keyed by its first packet, the accounting balanced in packets
    /// and `bundles_sent` the messages on the topic; under `--partitioner flow`
    /// every flow stays in the partition a single message of it would take.
    @Suite struct BundleWrite {
        typealias Bundle = FastcapaKafka.MessageContract.Bundle

        /// The generated capture: a protocol mix (frames up to 1514 bytes) and
        /// longer frames, all whole in the file.
        static func records() -> [PcapRecord] {
            let mix = SyntheticCaptures.protocolMix(count: 900, seed: 29)
            let long = (0..<12).map { index in
                PcapRecord(
                    micros: SyntheticCaptures.Times.june2024 + 60_000_000 + UInt64(index) * 3,
                    data: FrameBuilder.raw(count: 1200 + index * 700, seed: UInt64(index + 7))
                )
            }
            return mix + long
        }

        struct Run {
            var accounting: [String: Int]
            var messages: [Harness.Message]
            var packets: [[Bundle.Packet]]
        }

        /// Captures `records` with `options`, checks the accounting, and returns
        /// the topic as kcat reads it, each value decoded as a bundle.
        static func capture(_ records: [PcapRecord], partitions: Int = 1, _ options: [String]) throws -> Run {
            let directory = TestFiles.temporaryDirectory()
            let path = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let broker = try Harness.Broker(partitions: partitions)
            let result = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(path)"]),
                [
                    "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "-X",
                    "bootstrap.servers=\(broker.address)",
                ] + options
            )
            #expect(result.status == 0, "\(result.stderr)")
            let accounting = result.accounting
            #expect(accounting["received"] == records.count)
            #expect(accounting["delivered"] == records.count, "\(result.stdout)")
            #expect(accounting["dropped"] == 0)
            #expect(accounting["in_flight"] == 0)
            #expect(result.balanced, "\(result.stdout)")
            #expect(!result.stderr.contains("bundle pool:"), "every buffer handed back once: \(result.stderr)")
            let messages = try Harness.kcatRead(broker: broker.address)
            #expect(messages.count == accounting["bundles_sent"], "a message per bundle sent")
            #expect(accounting["bundles_delivered"] == accounting["bundles_sent"])
            let packets = try messages.enumerated().map { index, message in
                try Bundle.packets(in: message.value, count: nil, partition: 0, offset: Int64(index), topic: "pcap")
            }
            for (message, bundle) in zip(messages, packets) {
                #expect(message.micros == bundle.first?.micros, "a bundle's key is its first packet's time")
            }
            // consume reads the topic back as the capture, snap-cut frames with their original lengths.
            let consumed = try Consume.consumePcap(broker, to: directory.appendingPathComponent("back.pcap").path)
            let snap = options.firstIndex(of: "--snap-length").map { Int(options[$0 + 1])! } ?? Int.max
            let expected = records.map {
                PcapRecord(micros: $0.micros, data: Array($0.data.prefix(snap)), originalLength: $0.originalLength)
            }
            BundleRead.expectSame(consumed.records, expected, "consume, \(options)")
            return Run(accounting: accounting, messages: messages, packets: packets)
        }

        @Test func bundlesOfSevenFillUpAndComeBackRecordForRecord() throws {
            let records = Self.records()
            let run = try Self.capture(
                records,
                ["--bundle-packets", "7", "--bundle-linger-us", "1000000", "--snap-length", "1000"]
            )
            // The whole file arrives well within the linger: every bundle but the last is full.
            #expect(run.accounting["bundles_sent"] == (records.count + 6) / 7)
            #expect(run.packets.dropLast().allSatisfy { $0.count == 7 })
            #expect(run.accounting["truncated"] == records.filter { $0.data.count > 1000 }.count)
            #expect(run.accounting["produced"] == records.count)
        }

        @Test func bundlesOf256WithAShortLingerComeBackRecordForRecord() throws {
            let records = Self.records()
            let run = try Self.capture(
                records,
                [
                    "--bundle-packets", "256", "--bundle-linger-us", "50", "--bundle-bytes", "65536", "--snap-length",
                    "9000", "--headers", "port",
                ]
            )
            #expect(run.packets.allSatisfy { $0.count <= 256 })
            #expect(run.messages.allSatisfy { $0.value.count <= 65_536 })
            #expect(run.packets.reduce(0) { $0 + $1.count } == records.count)
            #expect(run.accounting["bundles_sent"] ?? 0 >= (records.count + 255) / 256)
        }

        /// Round-robin bundles rotate over the partitions, key-partitioned ones
        /// follow librdkafka's partitioner; `consume` merges them back into capture order.
        @Test(arguments: [["--partitioner", "round-robin"], ["--partitioner", "key"]])
        func bundlesOverThreePartitionsMergeBackInOrder(options: [String]) throws {
            let records = Self.records()
            let run = try Self.capture(
                records,
                partitions: 3,
                options + ["--bundle-packets", "7", "--bundle-linger-us", "1000000"]
            )
            #expect(Set(run.messages.map(\.partition)).count == 3, "bundles in every partition")
        }

        /// Flow partitioning keeps its meaning: every packet of a flow (by the
        /// probe's flow hash) lands in one partition, the one a single message
        /// of it would take (hash % partitions).
        @Test func flowPartitioningKeepsEachFlowInItsPartition() throws {
            let records = SyntheticCaptures.flows(count: 60, packetsPerFlow: 12, frameLength: 200)
            let run = try Self.capture(records, partitions: 3, ["--partitioner", "flow", "--bundle-packets", "16"])
            var partitionOfFlow: [UInt32: Int] = [:]
            var misplaced = 0
            for (message, bundle) in zip(run.messages, run.packets) {
                for packet in bundle {
                    let hash = packet.frame.withUnsafeBytes { FlowHash.hash($0) }
                    if let seen = partitionOfFlow[hash], seen != message.partition { misplaced += 1 }
                    partitionOfFlow[hash] = message.partition
                    if Int(hash % 3) != message.partition { misplaced += 1 }
                }
            }
            #expect(misplaced == 0)
            #expect(Set(run.messages.map(\.partition)).count == 3, "60 flows spread over the 3 partitions")
            #expect(run.packets.contains { $0.count > 1 }, "flows share bundles once the partition count is known")
        }
    }
}
