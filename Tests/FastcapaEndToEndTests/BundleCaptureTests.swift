import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// Captures published as bundles (`--bundle-packets`, MessageFormat.md,
    /// "Bundles"): the built and the shared captures come back through `consume`
    /// record for record and through the kcat recipe as a file tcpdump reads,
    /// whatever the bundle size and linger; a lone packet leaves after its linger,
    /// not at the stop; and the failure suite's faults and random stops lose
    /// nothing with bundles on.
    @Suite struct BundleCapture {
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
            return SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 600) + long
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
            let expected = records.filter { $0.data.count < Self.undeliverable }
            #expect(result.balanced, "\(name): \(result.stdout)")
            #expect(accounting["received"] == records.count, "\(name)")
            #expect(accounting["in_flight"] == 0, "\(name)")
            #expect(accounting["delivered"] == expected.count, "\(name)")
            #expect(accounting["drop_malformed"] == records.count - expected.count, "\(name)")

            // consume: every packet, in receive order (one partition), with its time and original length.
            let back = try Consume.consumePcap(broker, to: directory.appendingPathComponent("back.pcap").path)
            BundleRead.expectSame(back.records, expected, name)
            let bundles = try #require(accounting["bundles_sent"], "\(name): \(result.stdout)")
            #expect(bundles >= (expected.count + bundle.packets - 1) / bundle.packets, "\(name): \(bundles) bundles")
            #expect(bundles <= expected.count, "\(name): \(bundles) bundles")
            #expect(
                back.stderr.contains(
                    "\(expected.count) packets written of \(bundles) messages read (\(bundles) of them bundles of \(expected.count) packets)"
                ),
                "\(name): \(back.stderr)"
            )

            // The kcat recipe: the partition as a pcap file, read by tcpdump up to its first empty record.
            let file = directory.appendingPathComponent("kcat.pcap").path
            let recipe = try BundleRead.kcatRecipe(broker: broker.address, partition: 0, file: file)
            let made = try Harness.run("/bin/sh", ["-c", recipe])
            #expect(made.status == 0, "\(name): \(made.stderr)")
            let kcat = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))).records
            BundleRead.expectSame(kcat, expected, "\(name), kcat")
            let readable = expected.prefix { !$0.data.isEmpty }.count
            let tcpdump = try Harness.run("/usr/bin/env", ["tcpdump", "-r", file, "-nn", "-tt", "-c", "\(readable)"])
            #expect(tcpdump.status == 0, "\(name): \(tcpdump.stderr)")
            let lines = tcpdump.stdout.split(separator: "\n").filter { $0.first?.isNumber == true }
            #expect(lines.count == readable, "\(name): \(tcpdump.stderr)")
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

        @Test(arguments: [[String](), ["--delivery-reports", "thread"]])
        func aFatalProducerErrorLosesNoBundle(options: [String]) async throws {
            let run = try await Failures.FaultRun(
                "fatal error, bundles of 64\(options.isEmpty ? "" : ", " + options.joined(separator: " "))",
                idempotent: true,
                Self.faultOptions + options
            )
            let fault = run.nowMs
            run.probe.signal(SIGUSR2)
            try await Task.sleep(for: .seconds(2))
            let result = run.stop()
            run.checkAndReport(result, restarts: 1, recoveryMs: run.deliveryResumedMs(after: fault))
            #expect(result.accounting["drop_delivery_failed"] == 0, "the failed producer's bundles were re-produced")
            #expect((result.accounting["bundles_sent"] ?? 0) > 0)
        }

        @Test func allBrokersDownThenUpLosesNoBundle() async throws {
            let run = try await Failures.FaultRun("all brokers down 5 s, bundles of 64", Self.faultOptions)
            run.broker.send("down 1")
            try await Task.sleep(for: .seconds(5))
            let healed = run.nowMs
            run.broker.send("up 1")
            var recovered: Int?
            let deadline = Date().addingTimeInterval(15)
            while recovered == nil && Date() < deadline {
                try await Task.sleep(for: .milliseconds(100))
                recovered = run.deliveryResumedMs(after: healed)
            }
            try await Task.sleep(for: .seconds(1))
            let result = run.stop()
            run.checkAndReport(result, restarts: 0, recoveryMs: recovered)
            #expect(recovered != nil, "deliveries resume once the broker is back")
            #expect(result.accounting["drop_delivery_failed"] == 0)
        }

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

        /// SIGTERM at random moments in the first 3 s, open bundles and all: every run
        /// exits 0 balanced, nothing in flight.
        @Test func stopsAtRandomMomentsLoseNoBundle() async throws {
            let broker = try Harness.Broker()
            var generator = SeededGenerator(seed: 29)
            for run in 0..<5 {
                let probe = try Reliability.endless(
                    broker,
                    ["--drain-timeout", "5", "--bundle-packets", "256", "--bundle-linger-us", "50000"]
                )
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...3000, using: &generator)))
                let (result, seconds) = Reliability.stop(probe)
                #expect(!result.signaled && result.status == 0, "run \(run): \(result.stderr.suffix(1500))")
                #expect(result.balanced, "run \(run): \(result.stdout)")
                #expect(result.accounting["in_flight"] == 0, "run \(run)")
                #expect(
                    result.accounting["drop_drain_timeout"] ?? 0 == 0,
                    "run \(run): open bundles are sent at the stop"
                )
                #expect(seconds < 5 + 5, "run \(run): the stop took \(seconds) s")
            }
        }
    }
}
