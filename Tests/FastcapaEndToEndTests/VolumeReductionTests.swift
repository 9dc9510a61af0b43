import FastcapaTestSupport
import Foundation
import Glibc
import PcapFormat
import Testing

extension EndToEnd {
    /// The flow cutoff and duplicate removal against plain reference
    /// implementations of their rules (`FlowReference.Cutoff`, `DedupReference`),
    /// written for clarity in the test support: the probe replays a capture file
    /// (one queue, capture times from the records), and the topic must hold
    /// exactly, record for record (capture time and bytes, in order), what the
    /// references keep, with every removed packet counted by its reason.
    @Suite struct VolumeReduction {
        struct Case: CustomStringConvertible, Sendable {
            var packets: Int? = nil
            var bytes: Int? = nil
            /// Flows a table holds (--flow-table-size).
            var capacity = 4096
            /// --dedup-window-us (nil: off).
            var window: UInt64? = nil

            var description: String {
                [
                    packets.map { "N=\($0)" }, bytes.map { "B=\($0)" }, "table \(capacity)",
                    window.map { "W=\($0) µs" },
                ].compactMap { $0 }.joined(separator: " ")
            }

            var arguments: [String] {
                ["--flow-timeout", "\(FlowCorpus.timeoutMicros / 1_000_000)", "--flow-table-size", "\(capacity)"]
                    + (packets.map { ["--flow-cutoff-packets", "\($0)"] } ?? [])
                    + (bytes.map { ["--flow-cutoff-bytes", "\($0)"] } ?? [])
                    // The default window table (1 M frames): no corpus here comes near filling a bucket.
                    + (window.map { ["--dedup-window-us", "\($0)"] } ?? [])
            }

            var cutoff: FlowReference.Cutoff? {
                guard packets != nil || bytes != nil else { return nil }
                return FlowReference.Cutoff(
                    packets: packets,
                    bytes: bytes,
                    timeoutMicros: FlowCorpus.timeoutMicros,
                    capacity: capacity
                )
            }
        }

        /// Several N, B and W; a table too small for the corpus's flows (16 flows: a
        /// sweep for room reaches every entry, as the reference frees every expired flow).
        static let cases = [
            Case(packets: 1),
            Case(packets: 3),
            Case(bytes: 1_000),
            Case(packets: 5, bytes: 3_000),
            Case(packets: 2, capacity: 16),
            Case(bytes: 400, capacity: 8),
            Case(window: 1),
            Case(window: 500),
            Case(window: 20_000),
            Case(packets: 3, window: 500),
            Case(packets: 2, bytes: 1_500, capacity: 16, window: 20_000),
        ]

        struct Record: Equatable, CustomStringConvertible {
            var micros: UInt64
            var bytes: [UInt8]
            var description: String { "\(micros) µs, \(bytes.count) bytes" }
        }

        /// What the references keep of `records` (as the probe's device delivers them), and their counts.
        struct Expected {
            var kept: [Record] = []
            var cut = 0
            var cutBytes = 0
            var tableFull = 0
            var duplicates = 0
        }

        static func expected(_ records: [PcapRecord], _ check: Case) -> Expected {
            var expected = Expected()
            // Duplicates first: a copy never counts in its flow.
            var survivors = records
            if let window = check.window {
                let duplicates = DedupReference.duplicates(records, windowMicros: window)
                expected.duplicates = duplicates.filter { $0 }.count
                survivors = zip(records, duplicates).filter { !$0.1 }.map(\.0)
            }
            let decisions = check.cutoff?.decide(survivors) ?? survivors.map { _ in .untracked }
            for (record, decision) in zip(survivors, decisions) {
                switch decision {
                case .cut:
                    expected.cut += 1
                    expected.cutBytes += record.data.count
                case .keptTableFull:
                    expected.tableFull += 1
                    expected.kept.append(Record(micros: record.micros, bytes: record.data))
                case .kept, .untracked:
                    expected.kept.append(Record(micros: record.micros, bytes: record.data))
                }
            }
            return expected
        }

        /// Replays `records` with `check`'s options and compares the topic and the accounting.
        static func compare(_ records: [PcapRecord], _ check: Case, label: String) throws {
            let expected = Self.expected(records, check)
            let directory = TestFiles.temporaryDirectory()
            let file = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(file)"]),
                [
                    "--idle-exit", "1", "--stats-interval", "0", "--ring-full", "wait",
                    "-X", "bootstrap.servers=\(broker.address)",
                ] + check.arguments
            )
            let name = "\(label), \(check)"
            #expect(result.status == 0, "\(name): \(result.stderr.suffix(1500))")
            let accounting = result.accounting
            #expect(accounting["received"] == records.count, "\(name)")
            #expect(accounting["dropped"] == 0 && accounting["in_flight"] == 0, "\(name)")
            #expect(result.balanced, "\(name): received = filtered + flow_cutoff + duplicate + delivered + dropped")
            #expect(accounting["flow_cutoff"] == expected.cut, "\(name): flow_cutoff")
            #expect(accounting["flow_cutoff_bytes"] == expected.cutBytes, "\(name): flow_cutoff_bytes")
            #expect(accounting["flow_table_full"] == expected.tableFull, "\(name): flow_table_full")
            #expect(accounting["duplicate"] == expected.duplicates, "\(name): duplicate")
            #expect(accounting["duplicate_evicted"] == 0, "\(name): the window table held every frame")
            #expect(accounting["delivered"] == expected.kept.count, "\(name): delivered")

            let delivered = try Harness.kcatRead(broker: broker.address).map {
                Record(micros: $0.micros ?? 0, bytes: $0.value)
            }
            Harness.expectSame(delivered, expected.kept, name, oracle: "the reference")
            print(
                "volume reduction, \(name): \(records.count) records, \(expected.cut) cut, \(expected.duplicates) "
                    + "duplicates, \(expected.tableFull) kept for a full table, \(expected.kept.count) delivered"
            )
        }

        /// The generated corpus (VLAN and QinQ, IPv6 extension headers, fragments, runts,
        /// truncated records, both directions, times that go back, timeouts crossed) as
        /// the probe's device delivers it: captured bytes only, 65,535 bytes at most.
        static var generated: [PcapRecord] { Filters.asDelivered(withCopies(FlowCorpus.records())) }

        /// `records` with copies of every fifth one, as a SPAN port or a second tap delivers them: each copy a
        /// few records later, its capture time 0, 1, 499, 500, 501, 19,999, 20,000, 20,001 or 100,000 µs after
        /// the original's (at, inside and just outside the windows the cases use), some copies copied again.
        static func withCopies(_ records: [PcapRecord]) -> [PcapRecord] {
            var rng = SeededGenerator(seed: 2707)
            let offsets: [UInt64] = [0, 1, 2, 499, 500, 501, 19_999, 20_000, 20_001, 100_000]
            var output: [PcapRecord] = []
            var pending: [(due: Int, record: PcapRecord)] = []
            for (index, record) in records.enumerated() {
                output.append(record)
                if index % 5 == 0 {
                    var copy = record
                    copy.micros = record.micros + rng.pick(offsets)
                    pending.append((index + rng.int(1...4), copy))
                    if index % 15 == 0 {
                        var again = copy
                        again.micros = copy.micros + rng.pick(offsets)
                        pending.append((index + rng.int(5...8), again))
                    }
                }
                output += pending.filter { $0.due == index }.map(\.record)
                pending.removeAll { $0.due == index }
            }
            return output + pending.map(\.record)
        }

        @Test(arguments: cases)
        func generatedCorpusAsTheReferenceDecides(check: Case) throws {
            try Self.compare(Self.generated, check, label: "generated corpus")
        }

        @Test(.sharedCorpus, arguments: [Case(packets: 2, capacity: 64), Case(bytes: 2_000), Case(window: 1_000_000)])
        func sharedCapturesAsTheReferenceDecides(check: Case) throws {
            try Self.compare(Filters.asDelivered(try SharedCorpus.records()), check, label: "shared captures")
        }
        static let editcap = ["/usr/bin/editcap", "/usr/local/bin/editcap"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }

        /// The probe against `editcap -w` itself, record for record: the generated corpus with its copies
        /// (at, inside and just outside each window), in time order, as editcap needs it.
        @Test(
            .enabled(if: editcap != nil, "editcap is not installed (Debian: wireshark-common)"),
            arguments: [1, 500, 20_000] as [UInt64]
        )
        func duplicatesAsEditcapRemovesThem(window: UInt64) throws {
            let records = Self.generated.sorted { $0.micros < $1.micros }
            let directory = TestFiles.temporaryDirectory()
            let file = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let output = directory.appendingPathComponent("editcap.pcap").path
            let seconds = String(format: "%llu.%06llu", window / 1_000_000, window % 1_000_000)
            let edited = try Harness.run(
                try #require(Self.editcap),
                ["-w", seconds, "-F", "pcap", file, output],
                timeout: 60
            )
            try #require(edited.status == 0, "editcap: \(edited.stderr)")
            let expected = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))).records.map {
                Record(micros: $0.micros, bytes: $0.data)
            }
            #expect(expected.count < records.count, "the corpus has duplicates for editcap to remove")

            let broker = try Harness.Broker()
            let result = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(file)"]),
                [
                    "--idle-exit", "1", "--stats-interval", "0", "--ring-full", "wait", "--dedup-window-us",
                    "\(window)",
                    "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(result.status == 0, "\(result.stderr.suffix(1500))")
            #expect(result.balanced)
            #expect(result.accounting["duplicate"] == records.count - expected.count, "W=\(window) µs: duplicate")
            let delivered = try Harness.kcatRead(broker: broker.address).map {
                Record(micros: $0.micros ?? 0, bytes: $0.value)
            }
            Harness.expectSame(delivered, expected, "W=\(window) µs", oracle: "editcap")
            print("duplicates, W=\(window) µs: \(records.count) records, editcap and the probe keep \(expected.count)")
        }

        /// One UDP flow of 16 distinct frames, replayed without end.
        static func oneFlow() throws -> String {
            let records = (0..<16).map { index in
                PcapRecord(
                    micros: SyntheticCaptures.Times.june2024 + UInt64(index),
                    data: FrameBuilder().ip(
                        from: "10.0.0.1",
                        to: "10.0.0.2",
                        .udp(UDPDatagram(sourcePort: 1000, destinationPort: 53)),
                        frameLength: 64,
                        identification: UInt16(index)
                    )
                )
            }
            return try Harness.writePcap(records, to: TestFiles.temporaryDirectory(), name: "one-flow.pcap")
        }

        /// SIGHUP changes the cutoff while one flow replays without end, and the table keeps the flow:
        /// 10 packets delivered under a cutoff of 10; a raised cutoff lets the same flow (no new one
        /// created) through; the cutoff of 10 again cuts it at once, since the table counted every packet.
        /// A duplicate window the start did not set is named as needing a restart. /metrics carries the
        /// flow metrics, and promtool accepts them.
        @Test func sighupChangesTheCutoffAndKeepsTheFlows() async throws {
            let directory = TestFiles.temporaryDirectory()
            let config = directory.appendingPathComponent("fastcapa.yaml").path
            try "flow-cutoff-packets: 10\nflow-timeout: 3600\n".write(toFile: config, atomically: true, encoding: .utf8)
            let broker = try Harness.Broker()
            let probe = try Harness.Child(
                Harness.binary,
                Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(try Self.oneFlow()),infinite_rx=1"]) + [
                    "--", "--config", config, "--stats-interval", "0", "--metrics-address", "127.0.0.1:0",
                    "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            let base = try await Metrics.address(probe)
            func scrape() async throws -> String { try await Metrics.get("\(base)/metrics").body }
            func sample(_ text: String, _ name: String) -> Double {
                Metrics.value(text, name, name.hasPrefix("fastcapa_delivered") ? "worker=\"0\"" : "queue=\"0/0\"") ?? -1
            }
            /// Scrapes until `done` holds (or 20 s pass); the last scrape.
            func scrape(until done: (String) -> Bool) async throws -> String {
                let deadline = Date().addingTimeInterval(20)
                var text = try await scrape()
                while !done(text) && Date() < deadline {
                    try await Task.sleep(for: .milliseconds(200))
                    text = try await scrape()
                }
                return text
            }
            let cut = try await scrape {
                sample($0, "fastcapa_delivered_packets_total") == 10
                    && sample($0, "fastcapa_flow_cutoff_packets_total") > 1000
            }
            #expect(sample(cut, "fastcapa_delivered_packets_total") == 10, "a cutoff of 10 delivers 10")
            #expect(sample(cut, "fastcapa_flows_active") == 1 && sample(cut, "fastcapa_flows_created_total") == 1)
            #expect(sample(cut, "fastcapa_flow_table_capacity") == 1_048_576)
            #expect(sample(cut, "fastcapa_flow_table_fill_ratio") > 0)
            // 64 bytes a packet; the bytes are sampled just after the packets, so they may hold a burst more.
            let cutBytes = sample(cut, "fastcapa_flow_cutoff_bytes_total")
            #expect(
                cutBytes.truncatingRemainder(dividingBy: 64) == 0
                    && cutBytes >= 64 * sample(cut, "fastcapa_flow_cutoff_packets_total")
            )
            let scraped = directory.appendingPathComponent("metrics.txt").path
            try cut.write(toFile: scraped, atomically: true, encoding: .utf8)
            let lint = try Harness.run("/bin/sh", ["-c", "promtool check metrics < '\(scraped)'"], timeout: 30)
            #expect(lint.status == 0 && lint.stdout.isEmpty && lint.stderr.isEmpty, "promtool: \(lint)")

            /// Writes `text` to the config file, signals SIGHUP, waits for the `count`th swap line.
            func reload(_ text: String, swaps count: Int) async throws {
                try text.write(toFile: config, atomically: true, encoding: .utf8)
                probe.signal(SIGHUP)
                let line = "SIGHUP: flow cutoff and duplicate window replaced"
                let deadline = Date().addingTimeInterval(10)
                while probe.stderr.components(separatedBy: line).count - 1 < count && Date() < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(probe.stderr.components(separatedBy: line).count - 1 == count, "\(text): '\(line)'")
            }
            try await reload("flow-cutoff-packets: 1000000000\nflow-timeout: 3600\ndedup-window-us: 100\n", swaps: 1)
            let raised = try await scrape { sample($0, "fastcapa_delivered_packets_total") > 1000 }
            #expect(sample(raised, "fastcapa_delivered_packets_total") > 1000, "a raised cutoff lets the flow through")
            #expect(sample(raised, "fastcapa_flows_created_total") == 1, "the same flow, kept in the table")
            #expect(probe.stderr.contains("'dedup-window-us' changed but only takes effect when the probe restarts"))

            try await reload("flow-cutoff-packets: 10\nflow-timeout: 3600\n", swaps: 2)
            try await Task.sleep(for: .milliseconds(500))
            let before = try await scrape()
            try await Task.sleep(for: .milliseconds(1500))
            let after = try await scrape()
            #expect(
                sample(after, "fastcapa_delivered_packets_total") == sample(before, "fastcapa_delivered_packets_total"),
                "the flow is past 10 packets in the table: cut again at once"
            )
            probe.signal(SIGTERM)
            let result = probe.wait(timeout: 60)
            #expect(result.status == 0, "\(result.stderr.suffix(1500))")
            #expect(result.balanced)
            #expect(result.accounting["flows_created"] == 1 && result.accounting["duplicate"] == 0)
            #expect((result.accounting["flow_cutoff"] ?? 0) > 0)
        }
    }
}
