import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// The capture filter against tcpdump as the oracle: for each expression the
    /// topic holds exactly, record for record (key and bytes, in order), what
    /// `tcpdump -r FILE -w OUT EXPRESSION` keeps from the same file, and
    /// `filtered` counts the rest.
    @Suite struct Filters {
        /// Host, net, port range, VLAN, IPv6, TCP flags, length, multicast,
        /// negation, and/or, fragments, and the accept-all filter.
        static let expressions = [
            "host 10.0.0.1",
            "net 192.168.1.0/24",
            "tcp portrange 80-443",
            "vlan",
            "ip6",
            "tcp[tcpflags] & tcp-syn != 0",
            "greater 1000",
            "ether multicast",
            "not ip",
            // Plain `tcp port 443` does not match tagged frames, in tcpdump either: that is the truth here.
            "tcp port 443 or udp port 53",
            "vlan and (tcp port 443 or udp port 53)",
            "udp and not port 53",
            "icmp or icmp6 or arp",
            "ip[6:2] & 0x3fff != 0",
            "ip or not ip",
        ]

        /// What the probe's device (net_pcap) delivers of `records`: each frame
        /// as captured. net_pcap hands the probe the captured bytes as the whole
        /// frame (its length is the captured length: the original length of a
        /// truncated record is not passed on), and cannot deliver records over
        /// 65,535 bytes whole (Fidelity covers those). The oracle judges the
        /// frames the probe sees, so the file both read holds exactly these.
        static func asDelivered(_ records: [PcapRecord]) -> [PcapRecord] {
            records.filter { $0.data.count <= 65_535 }.map { PcapRecord(micros: $0.micros, data: $0.data) }
        }

        /// The synthetic corpus: every edge case (runts, chains up to 65,535
        /// bytes, VLAN and QinQ, fragments, 2038 and 2106) and a protocol mix.
        static var synthetic: [PcapRecord] {
            asDelivered(SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 600, seed: 14))
        }

        struct Record: Equatable, CustomStringConvertible {
            var micros: UInt64
            var bytes: [UInt8]
            var description: String { "\(micros) µs, \(bytes.count) bytes" }
        }

        /// What tcpdump keeps of `file` under `expression`, in order.
        static func tcpdumpKeeps(_ file: String, _ expression: String) throws -> [Record] {
            let output = TestFiles.temporaryDirectory().appendingPathComponent("kept.pcap").path
            let result = try Harness.run(
                "/usr/bin/env",
                ["tcpdump", "-Z", "root", "-r", file, "-w", output, expression],
                timeout: 60
            )
            try #require(result.status == 0, "tcpdump: \(result.stderr)")
            let kept = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: output))))
            return kept.records.map { Record(micros: $0.micros, bytes: $0.data) }
        }

        /// Captures `file` with `-f expression` (one queue, one transmit worker,
        /// one partition, nothing lost after the NIC) and checks the topic and
        /// the accounting against tcpdump.
        static func checkAgainstTcpdump(
            _ records: [PcapRecord],
            _ expression: String,
            engine: String = "jit",
            extra: [String] = []
        ) throws {
            let directory = TestFiles.temporaryDirectory()
            let file = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let expected = try tcpdumpKeeps(file, expression)
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(file)"]),
                [
                    "--idle-exit", "1", "--stats-interval", "0", "--ring-full", "wait", "-f", expression,
                    "--filter-engine", engine, "-X", "bootstrap.servers=\(broker.address)",
                ] + extra
            )
            #expect(result.status == 0, "\(expression): \(result.stderr.suffix(1500))")
            #expect(result.stderr.contains(engine == "jit" ? "JIT-compiled" : "run by the eBPF interpreter"))
            let accounting = result.accounting
            #expect(accounting["received"] == records.count, "\(expression)")
            #expect(accounting["dropped"] == 0, "\(expression)")
            #expect(accounting["in_flight"] == 0, "\(expression)")
            #expect(result.balanced, "\(expression): received = filtered + delivered + dropped + in flight")
            #expect(accounting["filtered"] == records.count - expected.count, "\(expression): filtered is the rest")
            #expect(accounting["delivered"] == expected.count, "\(expression)")

            let delivered = try Harness.kcatRead(broker: broker.address).map {
                Record(micros: $0.micros ?? 0, bytes: $0.value)
            }
            Harness.expectSame(delivered, expected, expression, oracle: "tcpdump")
            print(
                "filter '\(expression)' (\(engine)): \(records.count) records, \(expected.count) kept as tcpdump keeps them"
            )
        }

        @Test(arguments: expressions)
        func syntheticCapturesAsTcpdumpFiltersThem(expression: String) throws {
            try Self.checkAgainstTcpdump(Self.synthetic, expression)
        }

        /// The interpreter gives the same answers (where DPDK has a JIT it is only
        /// used when asked for: --filter-engine interpreter).
        @Test(arguments: expressions.filter { !$0.hasPrefix("ip or") })
        func syntheticCapturesAsTcpdumpFiltersThemInterpreted(expression: String) throws {
            try Self.checkAgainstTcpdump(Self.synthetic, expression, engine: "interpreter")
        }

        @Test(.sharedCorpus, arguments: expressions)
        func sharedCapturesAsTcpdumpFiltersThem(expression: String) throws {
            try Self.checkAgainstTcpdump(Self.asDelivered(try SharedCorpus.records()), expression)
        }

        /// Five common expressions (the first five of `FilterDifferentialTests`,
        /// which checks them against libpcap), replayed as a user would run them:
        /// the file as it is (truncated records, records over 65,535 bytes), no
        /// `--ring-full`, a small ring. A replay of files waits rather than drops
        /// (the start says so), so the topic holds exactly what tcpdump keeps of
        /// the frames as net_pcap delivers them (a truncated record's length is
        /// its captured length; records of 67,584 bytes and more cannot be
        /// delivered whole and are counted as malformed); for expressions that
        /// test no length that is what `tcpdump -r` keeps of the file itself.
        static let replayedExpressions = [
            "ip6 and not icmp6", "greater 512 and not arp", "ether broadcast or ether multicast",
            "net 10.0.0.0/8 and tcp", "not ip and not ip6",
        ]

        static func checkReplayAsGiven(_ records: [PcapRecord], _ expression: String) throws {
            let directory = TestFiles.temporaryDirectory()
            let file = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let deliverable = records.filter { $0.data.count < 67_584 }
            let seen = try Harness.writePcap(
                deliverable.map { PcapRecord(micros: $0.micros, data: $0.data) },
                to: directory,
                name: "seen.pcap"
            )
            let expected = try tcpdumpKeeps(seen, expression)
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(file)"]),
                [
                    "--idle-exit", "1", "--stats-interval", "0", "-x", "256", "-f", expression, "-X",
                    "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(result.status == 0, "\(expression): \(result.stderr.suffix(1500))")
            #expect(result.stderr.contains("ring-full: wait, since every port replays capture files"), "\(expression)")
            let accounting = result.accounting
            #expect(accounting["received"] == records.count, "\(expression)")
            #expect(accounting["drop_ring_full"] == 0, "\(expression): a replay loses nothing at the ring")
            let malformed = try #require(
                accounting["drop_malformed"],
                "\(expression): no drop_malformed in the accounting"
            )
            #expect(accounting["dropped"] == malformed, "\(expression)")
            #expect(malformed <= records.count - deliverable.count, "\(expression)")
            #expect(result.balanced, "\(expression)")
            let delivered = try Harness.kcatRead(broker: broker.address).map {
                Record(micros: $0.micros ?? 0, bytes: $0.value)
            }
            #expect(accounting["delivered"] == expected.count, "\(expression)")
            #expect(
                delivered == expected,
                "\(expression): \(delivered.count) delivered, tcpdump kept \(expected.count)"
            )
            if !expression.contains("greater") {
                let fromFile = try tcpdumpKeeps(file, expression).filter { $0.bytes.count < 67_584 }
                #expect(fromFile == expected, "\(expression): tcpdump -r on the file itself")
            }
            print(
                "replay '\(expression)': \(records.count) records, tcpdump keeps \(expected.count) as delivered, probe \(delivered.count), malformed \(malformed)"
            )
        }

        @Test(arguments: replayedExpressions)
        func aReplayKeepsWhatTcpdumpKeeps(expression: String) throws {
            let long = [65_600, 80_000].enumerated().map { i, count in
                PcapRecord(
                    micros: SyntheticCaptures.Times.june2024 + 9_000_000 + UInt64(i),
                    data: FrameBuilder.raw(count: count)
                )
            }
            try Self.checkReplayAsGiven(
                SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 2_000, seed: 15) + long,
                expression
            )
        }

        @Test(.sharedCorpus, arguments: replayedExpressions)
        func aReplayOfTheSharedCapturesKeepsWhatTcpdumpKeeps(expression: String) throws {
            try Self.checkReplayAsGiven(try SharedCorpus.records(), expression)
        }

        /// Chained frames: net_pcap puts 2,048 bytes in each segment, so these
        /// 5,000-byte frames arrive as chains of three. The filter's eBPF program
        /// reads packet data through the mbuf chain (librte_bpf's loads go
        /// through rte_pktmbuf_read, in the JIT and the interpreter alike): a
        /// match on bytes in the second segment, and on four bytes straddling
        /// the first two, decides here exactly as tcpdump decides on the whole frame.
        @Test(arguments: ["jit", "interpreter"])
        func chainedFramesAreFilteredOnBytesPastTheFirstSegment(engine: String) throws {
            func frame(marker: [UInt8], at offset: Int, port: UInt16) -> [UInt8] {
                var payload = (0..<4_958).map { UInt8(truncatingIfNeeded: $0 &* 7) }
                payload.replaceSubrange(offset..<offset + marker.count, with: marker)
                return FrameBuilder().ip(
                    from: "10.0.0.1",
                    to: "10.0.0.2",
                    .udp(UDPDatagram(sourcePort: 40_000, destinationPort: port, payload: payload))
                )
            }
            // UDP payload byte k is frame byte 42 + k (Ethernet 14, IPv4 20, UDP 8).
            let frames = [
                frame(marker: [0xDE, 0xAD, 0xBE, 0xEF], at: 3000, port: 1),  // second segment: match
                frame(marker: [0xDE, 0xAD, 0xBE, 0xEE], at: 3000, port: 2),  // one bit off: no match
                frame(marker: [1, 2, 3, 4], at: 2046 - 42, port: 3),  // frame bytes 2046-2049: match
                frame(marker: [1, 2, 3, 5], at: 2046 - 42, port: 4),  // no match
                frame(marker: [0xCA, 0xFE], at: 4500 - 42, port: 5),  // third segment: match
                FrameBuilder().ip(
                    from: "10.0.0.1",
                    to: "10.0.0.2",
                    .udp(UDPDatagram(sourcePort: 1, destinationPort: 6))
                ),
            ]
            #expect(frames.prefix(5).allSatisfy { $0.count == 5_000 })
            let records = frames.enumerated().map {
                PcapRecord(micros: SyntheticCaptures.Times.june2024 + UInt64($0.offset), data: $0.element)
            }
            let expression = "udp[3008:4] = 0xdeadbeef or ether[2046:4] = 0x01020304 or ether[4500:2] = 0xcafe"
            let kept = try Self.tcpdumpKeeps(
                try Harness.writePcap(records, to: TestFiles.temporaryDirectory(), name: "chains.pcap"),
                expression
            )
            #expect(kept.map(\.micros) == [0, 2, 4].map { SyntheticCaptures.Times.june2024 + UInt64($0) })
            try Self.checkAgainstTcpdump(records, expression, engine: engine)
        }

        /// SIGHUP changes the filter while a capture replays without end: to a
        /// new expression, an invalid one (refused, the running filter stays),
        /// none (removed), and one again. Each swap frees the old program once,
        /// after the grace period; receive never stands still; the books
        /// balance exactly across the swaps; and the probe's own snapshots (-s,
        /// every second) show each filter at work in its phase.
        @Test func sighupSwapsTheFilterWhilePacketsFlow() async throws {
            let directory = TestFiles.temporaryDirectory()
            let config = directory.appendingPathComponent("fastcapa.yaml").path
            let stats = directory.appendingPathComponent("stats.json").path
            try "filter: tcp\n".write(toFile: config, atomically: true, encoding: .utf8)
            let run = try await Failures.FaultRun(
                "SIGHUP swaps the capture filter",
                ["--stats-interval", "1", "-s", stats],
                config: config
            )
            /// The probe's snapshots so far: (received, filtered).
            func snapshots() -> [(received: Int, filtered: Int)] {
                let text = (try? String(contentsOfFile: stats, encoding: .utf8)) ?? ""
                return text.split(separator: "\n").compactMap { line in
                    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                        let own = object["fastcapa"] as? [String: Any],
                        let received = own["received"] as? Int, let filtered = own["filtered"] as? Int
                    else { return nil }
                    return (received, filtered)
                }
            }
            /// The share of packets filtered between two snapshots taken after the swap.
            func phase(_ text: String, logged line: String, occurrence: Int) async throws -> Double? {
                try text.write(toFile: config, atomically: true, encoding: .utf8)
                run.probe.signal(SIGHUP)
                let deadline = Date().addingTimeInterval(10)
                while Date() < deadline && run.probe.stderr.components(separatedBy: line).count - 1 < occurrence {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(run.probe.stderr.components(separatedBy: line).count - 1 == occurrence, "\(text): '\(line)'")
                let first = snapshots().count
                try await Task.sleep(for: .milliseconds(3300))
                let taken = snapshots()
                guard taken.count >= first + 2 else { return nil }
                let (a, b) = (taken[first], taken[taken.count - 1])
                return Double(b.filtered - a.filtered) / Double(max(b.received - a.received, 1))
            }
            // sample.pcap: 236 frames, 45 TCP, 85 UDP.
            let udp = try await phase("filter: udp\n", logged: "SIGHUP: capture filter replaced", occurrence: 1)
            let refused = try await phase(
                "filter: \"udp prot 53\"\n",
                logged: "the new configuration is refused",
                occurrence: 1
            )
            let none = try await phase("filter: \"\"\n", logged: "SIGHUP: capture filter removed", occurrence: 1)
            let both = try await phase("filter: tcp or udp\n", logged: "SIGHUP: capture filter replaced", occurrence: 2)
            let result = run.stop()
            run.checkAndReport(result, restarts: 0, recoveryMs: nil)
            func near(_ share: Double?, _ expected: Double) -> Bool { share.map { abs($0 - expected) < 0.05 } ?? false }
            #expect(near(udp, 1 - 85.0 / 236), "udp: \(udp ?? -1) of packets filtered")
            #expect(near(refused, 1 - 85.0 / 236), "the refused expression left udp in place: \(refused ?? -1)")
            #expect(none == 0, "no filter: nothing filtered (\(none ?? -1))")
            #expect(near(both, 1 - 130.0 / 236), "tcp or udp: \(both ?? -1)")
            #expect((result.accounting["filtered"] ?? 0) > 0 && (result.accounting["delivered"] ?? 0) > 0)
            #expect(result.stderr.contains("the new capture filter") || result.stderr.contains("is refused by libpcap"))
            // Three swaps with an old program (tcp → udp, udp → none, none → tcp or udp frees nothing), each freed once.
            let freed = result.stderr.split(separator: "\n").compactMap { line -> Int? in
                guard let range = line.range(of: "old_programs_freed=") else { return nil }
                return Int(line[range.upperBound...].prefix { $0.isNumber })
            }
            #expect(freed == [1, 1, 0], "\(freed)")
            #expect(result.stderr.contains("capture filter programs: 3 loaded, 3 freed"), "every program freed once")
        }
    }
}
