import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// The receive and transmit loops allocate nothing per packet or per burst:
    /// the probe runs with an allocation counter preloaded, and the worker
    /// lcores' counts stay at their start-up handful while millions of packets
    /// pass: without a filter, and with a capture filter run by the JIT and by
    /// the interpreter (net_null's frames are zeros: this filter reads four
    /// headers' worth of them and keeps every one, so the transmit side works too),
    /// with both loops co-scheduled on one lcore, and with `--headers` on frames cut
    /// by the snap length (every message through `rd_kafka_produceva` with pre-built
    /// headers and `orig_len`); and with the flow cutoff and duplicate window on
    /// (a replay of UDP flows: every packet looked up in both, most of them cut).
    @Suite struct HotLoops {
        static let filter = "not ip and not ip6 and not arp and ether[0:4] = 0 and ether[12:2] = 0"

        @Test(arguments: [
            ([String](), false), (["-f", filter], false), (["-f", filter, "--filter-engine", "interpreter"], false),
            (["-f", filter], true), (["--headers", "port,queue,probe", "--snap-length", "60"], false),
            (["--bundle-packets", "64", "--headers", "port", "--snap-length", "60"], false),
            (["--bundle-packets", "64", "--partitioner", "flow", "--bundle-linger-us", "10"], true),
        ])
        func workerLcoresDoNotAllocatePerPacket(filterOptions: [String], coScheduled: Bool) throws {
            try Self.check(filterOptions, coScheduled: coScheduled, vdev: "net_null0")
        }

        /// 4,096 distinct 64-byte UDP frames over 256 flows, replayed without end.
        @Test func flowCutoffAndDuplicateWindowDoNotAllocatePerPacket() throws {
            let records = (0..<4096).map { index in
                PcapRecord(
                    micros: SyntheticCaptures.Times.june2024 + UInt64(index),
                    data: FrameBuilder().ip(
                        from: .v4(IPv4Address(10, 1, UInt8(index % 256), 1)),
                        to: "10.2.0.1",
                        .udp(UDPDatagram(sourcePort: 40_000, destinationPort: 53)),
                        frameLength: 64,
                        identification: UInt16(index)
                    )
                )
            }
            let file = try Harness.writePcap(records, to: TestFiles.temporaryDirectory(), name: "flows.pcap")
            try Self.check(
                ["--flow-cutoff-packets", "5", "--dedup-window-us", "50", "--dedup-table-size", "4096"],
                coScheduled: false,
                vdev: "net_pcap0,rx_pcap=\(file),infinite_rx=1"
            )
        }

        static func check(_ filterOptions: [String], coScheduled: Bool, vdev: String) throws {
            let directory = TestFiles.temporaryDirectory()
            let library = try Harness.compilePreload("alloc_counter")
            let report = directory.appendingPathComponent("allocations.txt").path

            let broker = try Harness.Broker()
            let result = try Harness.probe(
                for: 4,
                eal: Harness.eal(lcores: 3, vdevs: [vdev], coScheduled: coScheduled),
                ["--stats-interval", "1", "-X", "bootstrap.servers=\(broker.address)"] + filterOptions,
                wrapper: ["LD_PRELOAD=\(library)", "FASTCAPA_ALLOC_REPORT=\(report)"]
            )
            #expect(result.status == 0, "\(result.stderr)")
            let received = result.accounting["received"] ?? 0
            let produced = result.accounting["produced"] ?? 0
            // Enough to tell per-packet (or per-burst, 32 packets) allocations from the
            // start-up handful (< 100 below), however busy the host: not a rate.
            #expect(received > 100_000, "enough packets to tell per-packet allocations from start-up ones")
            let bundles = result.accounting["bundles_sent"] ?? 0
            if filterOptions.contains("--bundle-packets") {
                // Packets went in bundles: several a message.
                #expect(bundles > 0 && bundles * 4 < produced, "\(bundles) bundles of \(produced) packets")
            } else if filterOptions.contains("--flow-cutoff-packets") {
                // Every packet went through the duplicate window and the flow table; most were cut.
                #expect((result.accounting["flows_created"] ?? 0) >= 256, "every flow tracked")
                #expect((result.accounting["flow_cutoff"] ?? 0) > received / 2, "most packets cut")
                #expect(produced > 0)
            } else if filterOptions.contains("--snap-length") {
                // Every message went through rd_kafka_produceva with headers and orig_len.
                #expect((result.accounting["truncated"] ?? 0) > produced / 2)
            } else if !filterOptions.isEmpty {
                #expect(result.stderr.contains("capture filter: '\(Self.filter)'"), "the filter ran")
                #expect(result.accounting["filtered"] == 0, "net_null's frames are zeros: the filter keeps them all")
            }

            // Lcore 1 receives, lcore 2 transmits (one queue, one transmit worker); co-scheduled, lcore 1 does both.
            #expect(result.stderr.contains("co-scheduled") == coScheduled)
            let lines = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n")
            var counts: [String: (mallocs: Int, swift: Int)] = [:]
            for line in lines {
                let fields = line.split(separator: " ")
                counts[String(fields[0])] = (Int(fields[1]) ?? -1, Int(fields[2]) ?? -1)
            }
            // A worker that never allocates never appears in the report.
            let receive: (mallocs: Int, swift: Int) = coScheduled ? (0, 0) : counts["rte-worker-1"] ?? (0, 0)
            let transmit = try #require(
                counts[coScheduled ? "rte-worker-1" : "rte-worker-2"],
                "the counter must see the transmit lcore: \(lines)"
            )
            print(
                "hot loops\(coScheduled ? ", co-scheduled" : "")\(filterOptions.isEmpty ? "" : " (" + filterOptions.joined(separator: " ") + ")"): \(received) packets received, \(produced) produced; receive lcore: \(receive.mallocs) mallocs, \(receive.swift) Swift allocations; transmit lcore: \(transmit.swift) Swift allocations, \(transmit.mallocs) mallocs (librdkafka copies each message)"
            )
            // The receive lcore: nothing at all per packet.
            #expect(receive.mallocs + receive.swift < 100)
            // The transmit lcore: no Swift allocation per packet; librdkafka's own
            // per-message copy is the only malloc there, and it is librdkafka's.
            #expect(transmit.swift < 100)
            if bundles > 0 {
                // A bundle is sent without a copy: librdkafka allocates per bundle, not per packet.
                #expect(transmit.mallocs >= bundles / 2)
                #expect(transmit.mallocs < produced / 4)
            } else {
                // The counter works: librdkafka's per-message copy shows on the transmit lcore.
                #expect(transmit.mallocs >= produced / 2)
            }
        }
    }
}
