import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// `fastcapa consume`: captures → Kafka → pcap, pcapng or text.
    @Suite struct Consume {
        /// Captures built here → probe → Kafka → consume → a pcap identical
        /// record for record: same bytes, same timestamps, same order.
        @Test func roundTripGivesBackTheSameCapture() throws {
            try Self.roundTrip(SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 500))
        }

        /// The same with the shared corpus (less the records net_pcap cannot deliver whole).
        @Test(.sharedCorpus) func sharedCapturesRoundTrip() throws {
            try Self.roundTrip(try SharedCorpus.records().filter { $0.data.count <= 65_535 })
        }

        static func roundTrip(_ records: [PcapRecord]) throws {
            let directory = TestFiles.temporaryDirectory()
            let input = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let broker = try Harness.Broker(partitions: 1)
            let captured = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                [
                    "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "-X",
                    "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(captured.status == 0, "\(captured.stderr)")
            #expect(captured.accounting["delivered"] == records.count)

            let output = directory.appendingPathComponent("output.pcap").path
            let consumed = try Harness.run(
                Harness.binary,
                ["consume", "-b", broker.address, "--format", "pcap", "-o", output]
            )
            #expect(consumed.status == 0, "\(consumed.stderr)")
            let back = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))).records
            #expect(back.count == records.count)
            #expect(back.map(\.micros) == records.map(\.micros))
            #expect(back.map(\.data) == records.map(\.data))

            // pcapng, read by tshark: the same times and lengths.
            let pcapng = directory.appendingPathComponent("output.pcapng").path
            #expect(
                try Harness.run(Harness.binary, ["consume", "-b", broker.address, "--format", "pcapng", "-o", pcapng])
                    .status == 0
            )
            let fields = try Harness.run(
                "/usr/bin/env",
                ["tshark", "-r", pcapng, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.cap_len"]
            )
            #expect(fields.status == 0, "\(fields.stderr)")
            let lines = fields.stdout.split(separator: "\n")
            #expect(lines.count == records.count)
            for (line, record) in zip(lines, records) {
                let parts = line.split(separator: "\t")
                #expect(Int(parts[1]) == record.data.count)
                let seconds = parts[0].split(separator: ".")
                #expect(UInt64(seconds[0]) == record.micros / 1_000_000, "\(line)")
            }

            // A pipe into tshark, a time range, chosen partitions and a count.
            let piped = try Harness.run(
                "/bin/sh",
                [
                    "-c",
                    "'\(Harness.binary)' consume -b \(broker.address) --format pcap | tshark -r - -T fields -e frame.number | wc -l",
                ]
            )
            #expect(piped.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(records.count)")
            let sorted = records.map(\.micros).sorted()
            let since = sorted[sorted.count / 2]
            let expectedInRange = records.filter { $0.micros >= since }.count
            let ranged = try Harness.run(
                Harness.binary,
                ["consume", "-b", broker.address, "--since", "\(Double(since) / 1e6)", "--partitions", "0"]
            )
            #expect(ranged.stdout.split(separator: "\n").count == expectedInRange, "\(ranged.stderr)")
            let counted = try Harness.run(Harness.binary, ["consume", "-b", broker.address, "-n", "5"])
            #expect(counted.stdout.split(separator: "\n").count == 5)
            #expect(counted.stdout.contains("length"))
        }

        @Test func badConsumeInputIsRefusedClearly() throws {
            let cases: [([String], String)] = [
                (["consume"], "no broker"),
                (["consume", "-b", "x:1", "--format", "json"], "--format"),
                (["consume", "-b", "x:1", "--from", "middle"], "--from"),
                (["consume", "-b", "x:1", "--since", "yesterday"], "--since"),
                (["consume", "-b", "x:1", "--partitions", "a,b"], "--partitions"),
                (["consume", "-b", "x:1", "--since", "20", "--until", "10"], "--since must come before --until"),
            ]
            for (arguments, mention) in cases {
                let result = try Harness.run(Harness.binary, arguments, timeout: 30)
                #expect(result.status != 0)
                #expect(!result.signaled)
                #expect(result.stderr.contains(mention), "\(arguments): \(result.stderr)")
            }
        }
    }
}
