import FastcapaCapture
import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// Live kernel interfaces: the probe on one end of a veth pair inside a
    /// network namespace the test creates, tcpreplay sending into the other end,
    /// and tcpdump on the probe's end as the oracle of what the interface carried.
    @Suite struct LiveInterface {
        /// One run: what the probe published and what tcpdump saw meanwhile.
        struct Capture {
            var result: Harness.Result
            var messages: [Harness.Message]
            /// What tcpdump wrote: each frame with the kernel's timestamp.
            var oracleRecords: [PcapRecord]
            var oracle: [[UInt8]] { oracleRecords.map(\.data) }
            /// The run's wall-clock window, epoch µs.
            var start: UInt64
            var end: UInt64
        }

        /// Starts the probe on the namespace's `fcA` with `vdev`, then tcpdump, waits `idle` seconds, replays
        /// `frames` into `fcB`, and stops tcpdump, then the probe.
        static func capture(
            _ namespace: Harness.VethNamespace,
            vdev: String,
            lcores: Int = 3,
            _ application: [String] = [],
            frames: [[UInt8]],
            pps: Int = 2000,
            partitions: Int = 4,
            idle: UInt32 = 0
        ) throws -> Capture {
            let replay = try Harness.writePcap(
                frames.enumerated().map { PcapRecord(micros: UInt64($0.offset), data: $0.element) },
                to: TestFiles.temporaryDirectory(),
                name: "replay.pcap"
            )
            let broker = try Harness.Broker(partitions: partitions, wrapper: namespace.wrapper)
            let start = UInt64(Date().timeIntervalSince1970 * 1_000_000)
            let probe = try Harness.Child(
                "/usr/bin/env",
                namespace.wrapper + [Harness.binary] + Harness.eal(lcores: lcores, vdevs: [vdev]) + [
                    "--", "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)",
                ] + application
            )
            let ready = Date().addingTimeInterval(20)
            while !probe.stderr.contains("capturing") && Date() < ready { usleep(50_000) }
            let tcpdump = try Harness.Tcpdump(namespace, interface: namespace.probeEnd)
            sleep(idle)
            let replayed = try namespace.replay(replay, pps: pps)
            #expect(replayed.status == 0, "\(replayed.stderr)")
            sleep(1)
            let oracle = try tcpdump.stop()
            probe.signal(SIGTERM)
            let result = probe.wait(timeout: 60)
            let end = UInt64(Date().timeIntervalSince1970 * 1_000_000)
            let messages = try Harness.kcatRead(broker: broker.address, wrapper: namespace.wrapper)
            return Capture(result: result, messages: messages, oracleRecords: oracle, start: start, end: end)
        }

        /// Frames in `a` not matched one for one in `b`.
        static func missing(_ a: [[UInt8]], from b: [[UInt8]]) -> [[UInt8]] {
            var counts: [[UInt8]: Int] = [:]
            for frame in b { counts[frame, default: 0] += 1 }
            return a.filter { frame in
                guard let count = counts[frame], count > 0 else { return true }
                counts[frame] = count - 1
                return false
            }
        }

        /// The frames published are those expected, one for one, byte for byte.
        static func checkSameFrames(
            _ published: [[UInt8]],
            _ expected: [[UInt8]],
            sourceLocation: SourceLocation = #_sourceLocation
        ) {
            let lost = missing(expected, from: published)
            let extra = missing(published, from: expected)
            #expect(
                lost.count == 0,
                "\(lost.count) of \(expected.count) expected frames are missing or altered: \(describe(lost))",
                sourceLocation: sourceLocation
            )
            #expect(
                extra.count == 0,
                "\(extra.count) frames not expected: \(describe(extra))",
                sourceLocation: sourceLocation
            )
        }

        static func describe(_ frames: [[UInt8]]) -> String {
            frames.prefix(8).map { frame in
                "\(frame.count) bytes " + frame.prefix(24).map { String(format: "%02x", $0) }.joined()
            }.joined(separator: "; ")
        }

        /// Keys are capture times: inside the run's window, and never earlier
        /// than the key before them in the same partition.
        static func checkKeys(_ capture: Capture) {
            let keys = capture.messages.map { $0.micros ?? 0 }
            #expect(keys.allSatisfy { (capture.start...capture.end).contains($0) }, "keys outside the run's window")
            var last: [Int: UInt64] = [:]
            var stepsBack = 0
            for message in capture.messages {
                let micros = message.micros ?? 0
                if let before = last[message.partition], micros < before { stepsBack += 1 }
                last[message.partition] = micros
            }
            #expect(stepsBack == 0, "\(stepsBack) keys earlier than the one before them in their partition")
        }

        /// What the test claims to cover reached the interface: the oracle holds
        /// jumbo, tagged, fragmented and runt frames.
        static func checkCoverage(_ oracle: [[UInt8]], mtu: Int) {
            let tagged = oracle.filter { [0x81, 0x88].contains($0[12]) }
            #expect(oracle.contains { $0.count == mtu + 14 }, "a \(mtu + 14)-byte frame")
            #expect(tagged.contains { $0.count == mtu + 18 }, "a tagged \(mtu + 18)-byte frame")
            #expect(tagged.contains { $0[12] == 0x88 && $0[13] == 0xA8 }, "an 802.1ad frame")
            #expect(oracle.filter(SyntheticCaptures.isIPv4Fragment).count >= 15, "IPv4 fragments")
            #expect(oracle.contains { $0.count == 14 } && oracle.contains { $0.count == 42 }, "runts")
        }

        @Test func netPcapDeliversEveryFrameTcpdumpSawOnceAndByteIdentical() throws {
            let namespace = try Harness.VethNamespace(mtu: 9000)
            let frames = SyntheticCaptures.kernelInterfaceMix(mtu: 9000)
            let capture = try Self.capture(namespace, vdev: "net_pcap0,iface=fcA", frames: frames)
            let result = capture.result
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced && result.accounting["dropped"] == 0)
            #expect(result.accounting["nic_kernel_dropped"] == 0)
            #expect(!result.stderr.contains("does not capture faithfully"))
            Self.checkCoverage(capture.oracle, mtu: 9000)

            let published = capture.messages.map(\.value)
            let lost = Self.missing(capture.oracle, from: published)
            let extra = Self.missing(published, from: capture.oracle)
            #expect(
                lost.count == 0,
                "\(lost.count) of \(capture.oracle.count) frames tcpdump saw are missing or altered: \(Self.describe(lost))"
            )
            #expect(extra.count == 0, "\(extra.count) frames tcpdump did not see: \(Self.describe(extra))")
            #expect(published.count == capture.oracle.count && result.accounting["delivered"] == published.count)
            // net_pcap stamps packets with the kernel's receive time, as libpcap gives it to tcpdump.
            #expect(result.stderr.contains("device timestamps"))
            Self.checkKeys(capture)
        }

        @Test func afPacketWithALargeRingDiffersFromTcpdumpOnlyWhereTheKernelReassembles() throws {
            let namespace = try Harness.VethNamespace(mtu: 9000)
            // The ring slot the probe asks for when it refuses the default one on MTU 9000 (BadInput).
            let ring = AfPacketRing(frameSize: 9216, blockSize: 36864)
            let frames = SyntheticCaptures.kernelInterfaceMix(mtu: 9000)
            let capture = try Self.capture(
                namespace,
                vdev: "net_af_packet0,iface=fcA,framesz=9216,blocksz=36864",
                frames: frames
            )
            let result = capture.result
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            #expect(
                result.stderr.contains("does not capture faithfully") && result.stderr.contains("net_pcap0,iface=fcA")
            )
            #expect(!result.stderr.contains("cannot be read"), "af_packet's socket drops are read")
            #expect(result.accounting["nic_kernel_dropped"] == 0)
            Self.checkCoverage(capture.oracle, mtu: 9000)

            // The difference, explicitly: af_packet's fanout group reassembles IPv4 fragments (those of an
            // incomplete datagram never arrive), and a datagram longer than the ring slot is cut by the kernel,
            // which the probe drops as malformed rather than publish short.
            let oracle = capture.oracle
            let reassembly = SyntheticCaptures.reassemblingIPv4(oracle)
            let cut = reassembly.frames.filter { $0.count >= ring.frameBytes }
            let whole = reassembly.frames.filter { $0.count < ring.frameBytes }
            #expect(reassembly.datagrams >= 5 && reassembly.incomplete == 1)
            #expect(cut.count == 1, "the reassembled 13,514-byte datagram")
            #expect(result.accounting["drop_malformed"] == cut.count)
            #expect(result.accounting["dropped"] == cut.count)
            for datagram in SyntheticCaptures.fragmentedDatagrams(mtu: 9000)
            where datagram.reassembled.count < ring.frameBytes {
                #expect(
                    whole.contains(Self.afPacketTags(datagram.reassembled)),
                    "reassembled as the datagram was built"
                )
            }
            // ...and it puts the outer VLAN tag it took off back as 0x8100: 802.1ad's 0x88A8 is lost.
            let expected = whole.map(Self.afPacketTags)
            #expect(whole.contains { $0[12] == 0x88 && $0[13] == 0xA8 }, "the mix holds 802.1ad frames")

            let published = capture.messages.map(\.value)
            #expect(
                published.count == expected.count,
                "tcpdump saw \(oracle.count) frames, af_packet should give \(expected.count)"
            )
            Self.checkSameFrames(published, expected)
            // Apart from those, byte-identical to what tcpdump saw.
            let untouched = oracle.filter {
                !SyntheticCaptures.isIPv4Fragment($0) && !($0[12] == 0x88 && $0[13] == 0xA8)
            }
            #expect(Self.missing(untouched, from: published).count == 0)
            Self.checkKeys(capture)
        }

        /// `framesz=16384` alone, on a veth of MTU 9000, is refused with one whole `--vdev` to run (not a bare
        /// "Use blocksz=16384."); the probe started with it publishes every frame tcpdump saw (as af_packet
        /// hands them over: fragments reassembled, the outer VLAN tag back as 0x8100).
        @Test func afPacketsRefusalNamesTheOneDeviceThatThenCapturesEveryFrame() throws {
            let namespace = try Harness.VethNamespace(mtu: 9000)
            let refused = try Harness.run(
                "/usr/bin/env",
                namespace.wrapper + [Harness.binary]
                    + Harness.eal(lcores: 3, vdevs: ["net_af_packet0,iface=fcA,framesz=16384"])
                    + ["--", "-X", "bootstrap.servers=127.0.0.1:1"],
                timeout: 60
            )
            #expect(refused.status == 64, "\(refused.stderr)")
            let suggestion = refused.stderr.range(of: "Use --vdev=").map { range in
                String(refused.stderr[range.upperBound...].prefix { !$0.isWhitespace }.dropLast())
            }
            #expect(suggestion == "net_af_packet0,iface=fcA,framesz=16384,blocksz=16384", "\(refused.stderr)")
            let vdev = try #require(suggestion)

            let capture = try Self.capture(
                namespace,
                vdev: vdev,
                frames: SyntheticCaptures.kernelInterfaceMix(mtu: 9000)
            )
            let result = capture.result
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced && result.accounting["dropped"] == 0)
            #expect(result.accounting["nic_kernel_dropped"] == 0)
            Self.checkCoverage(capture.oracle, mtu: 9000)
            let expected = SyntheticCaptures.reassemblingIPv4(capture.oracle).frames.map(Self.afPacketTags)
            Self.checkSameFrames(capture.messages.map(\.value), expected)
            #expect(result.accounting["delivered"] == expected.count)
        }

        /// A frame the kernel cut at the ring slot is dropped as malformed whatever the snap length. With a
        /// --snap-length shorter than the slot it went out as truncated, its cut length given as the original.
        @Test func aFrameTheKernelCutIsMalformedUnderAShortSnapLength() throws {
            let namespace = try Harness.VethNamespace(mtu: 9000)
            let ring = AfPacketRing(frameSize: 9216, blockSize: 36864)
            let snapLength = 1000
            let capture = try Self.capture(
                namespace,
                vdev: "net_af_packet0,iface=fcA,framesz=9216,blocksz=36864",
                ["--snap-length", "\(snapLength)"],
                frames: SyntheticCaptures.kernelInterfaceMix(mtu: 9000)
            )
            let result = capture.result
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            let reassembly = SyntheticCaptures.reassemblingIPv4(capture.oracle)
            #expect(reassembly.frames.filter { $0.count >= ring.frameBytes }.count == 1, "the 13,514-byte datagram")
            #expect(result.accounting["drop_malformed"] == 1 && result.accounting["dropped"] == 1)
            let whole = reassembly.frames.filter { $0.count < ring.frameBytes }.map(Self.afPacketTags)
            #expect(result.accounting["truncated"] == whole.filter { $0.count > snapLength }.count)
            Self.checkSameFrames(capture.messages.map(\.value), whole.map { Array($0.prefix(snapLength)) })
        }

        /// A frame as DPDK 22.11's af_packet driver rebuilds it: the kernel hands
        /// over the outer VLAN tag apart, and `rte_vlan_insert` writes it back with TPID 0x8100.
        static func afPacketTags(_ frame: [UInt8]) -> [UInt8] {
            guard frame.count >= 16, frame[12] == 0x88, frame[13] == 0xA8 else { return frame }
            var rebuilt = frame
            rebuilt[12] = 0x81
            rebuilt[13] = 0x00
            return rebuilt
        }

        @Test func packetsFromAVethPairArriveIntactAndFlowsKeepTheirPartition() throws {
            let namespace = try Harness.VethNamespace()
            // Unfragmented frames the default ring holds whole.
            let frames = SyntheticCaptures.protocolMix(count: 1200).map(\.data).filter {
                !SyntheticCaptures.isIPv4Fragment($0) && $0.count < AfPacketRing().frameBytes
            }.prefix(600)
            let capture = try Self.capture(
                namespace,
                vdev: "net_af_packet0,iface=fcA,qpairs=2",
                lcores: 5,
                ["-q", "2", "--partitioner", "flow"],
                frames: Array(frames),
                pps: 3000
            )
            let result = capture.result
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            #expect(result.accounting["dropped"] == 0)
            #expect(result.accountingList("received_per_queue").count == 2)
            let messages = capture.messages
            #expect(messages.count == result.accounting["delivered"])
            let published = messages.map { Self.afPacketTags($0.value) }
            let lost = Self.missing(frames.map(Self.afPacketTags), from: published)
            #expect(lost.count == 0, "\(lost.count) of \(frames.count) replayed frames did not arrive intact")
            // No device timestamps on af_packet: keys are the TSC clock at capture, within the run.
            #expect(messages.allSatisfy { (capture.start...capture.end).contains($0.micros ?? 0) })
            // Flow partitioning: a flow's packets, in both directions, share one partition.
            var partitionOfFlow: [UInt32: Set<Int>] = [:]
            for message in messages {
                let hash = message.value.withUnsafeBytes { FlowHash.hash($0) }
                partitionOfFlow[hash, default: []].insert(message.partition)
                #expect(message.partition == Int(hash % 4))
            }
            #expect(partitionOfFlow.values.allSatisfy { $0.count == 1 })
            #expect(Set(messages.map(\.partition)).count > 1, "flows spread over partitions")
        }

        /// The TSC clock (net_af_packet gives no device timestamps) after an idle spell: no key is earlier than
        /// the kernel's timestamp of its frame, as tcpdump has it, by more than 50 µs (two packet sockets'
        /// timestamps of one frame differ by up to ~30 µs). A clock that runs on from its last anchor at a TSC
        /// rate off by DPDK's rounding to 10 MHz (0.15 % on this host) is 7 ms early after 5 s of silence. How
        /// late keys are depends on scheduling: `Scripts/clock-accuracy` measures the whole distribution.
        @Test func afPacketKeysAreNotEarlierThanTheKernelsTimeAfterAnIdleSpell() throws {
            let namespace = try Harness.VethNamespace()
            // Unfragmented frames the default ring holds whole, without 802.1ad tags (af_packet rewrites them).
            let frames = SyntheticCaptures.protocolMix(count: 1200).map(\.data).filter {
                !SyntheticCaptures.isIPv4Fragment($0) && $0.count < AfPacketRing().frameBytes
                    && !($0.count >= 14 && $0[12] == 0x88 && $0[13] == 0xA8)
            }
            let capture = try Self.capture(
                namespace,
                vdev: "net_af_packet0,iface=fcA",
                frames: frames,
                partitions: 1,
                idle: 5
            )
            let result = capture.result
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced && result.accounting["dropped"] == 0)

            // Frames whose bytes occur once in what was sent, once in what tcpdump saw and once in what the
            // probe published: key - tcpdump's timestamp, in receive order.
            func counts(_ frames: [[UInt8]]) -> [[UInt8]: Int] { frames.reduce(into: [:]) { $0[$1, default: 0] += 1 } }
            let sent = counts(frames)
            let seen = counts(capture.oracle)
            let published = counts(capture.messages.map(\.value))
            let keys = Dictionary(capture.messages.map { ($0.value, $0.micros ?? 0) }) { first, _ in first }
            let errors = capture.oracleRecords.filter {
                sent[$0.data] == 1 && seen[$0.data] == 1 && published[$0.data] == 1
            }.map { Int64(bitPattern: keys[$0.data]! &- $0.micros) }
            #expect(errors.count >= sent.count * 9 / 10, "\(errors.count) of \(sent.count) unique frames matched")
            let sorted = errors.sorted()
            let early = errors.filter { $0 < -50 }
            let spread =
                "first frame \(errors.first ?? 0), min \(sorted.first ?? 0), "
                + "median \(sorted.isEmpty ? 0 : sorted[sorted.count / 2]), max \(sorted.last ?? 0) µs"
            #expect(
                early.count == 0,
                "\(early.count) of \(errors.count) keys earlier than tcpdump's by more than 50 µs; key - tcpdump: \(spread)"
            )
            // Whatever the clock does to catch up, keys never step back within the queue's partition.
            Self.checkKeys(capture)
        }

        /// GET `path` from the probe's metrics server inside the namespace: (HTTP status, body).
        static func scrape(_ namespace: Harness.VethNamespace, _ base: String, _ path: String) throws -> (Int, String) {
            let output = try Harness.run(
                "/usr/bin/env",
                namespace.wrapper + ["curl", "-s", "-w", "\n%{http_code}", "\(base)/\(path)"],
                timeout: 30
            ).stdout
            // The body, then a line with the status that -w adds.
            guard let newline = output.lastIndex(of: "\n") else { return (0, output) }
            return (Int(output[output.index(after: newline)...]) ?? 0, String(output[..<newline]))
        }

        /// Each port's link, in /metrics and /health. DPDK 22.11's af_packet driver says its link is
        /// up whatever the interface does; the probe asks the kernel too, so the peer set down (fcA loses its
        /// carrier) shows as link down, /health degrades with the reason, and both recover with the peer.
        @Test func aLinkThatGoesDownShowsInTheMetricsAndDegradesHealth() throws {
            let namespace = try Harness.VethNamespace()
            let broker = try Harness.Broker(wrapper: namespace.wrapper)
            let probe = try Harness.Child(
                "/usr/bin/env",
                namespace.wrapper + [Harness.binary]
                    + Harness.eal(lcores: 3, vdevs: ["net_af_packet0,iface=fcA"]) + [
                        "--", "--stats-interval", "0", "--metrics-address", "127.0.0.1:0", "-X",
                        "bootstrap.servers=\(broker.address)",
                    ]
            )
            let ready = Date().addingTimeInterval(20)
            var base: String?
            while base == nil && Date() < ready {
                base = probe.stderr.range(of: #"http://[0-9.]+:[0-9]+"#, options: .regularExpression).map {
                    String(probe.stderr[$0])
                }
                if base == nil { usleep(50_000) }
            }
            let url = try #require(base, "the probe says where it serves metrics: \(probe.stderr)")
            let port = "port=\"0\""
            /// Scrapes until `done` holds for the metrics and health (at most 10 s); returns the last scrape.
            func until(_ done: (String, (Int, String)) -> Bool) throws -> (metrics: String, health: (Int, String)) {
                let deadline = Date().addingTimeInterval(10)
                while true {
                    let metrics = try Self.scrape(namespace, url, "metrics").1
                    let health = try Self.scrape(namespace, url, "health")
                    if done(metrics, health) || Date() > deadline { return (metrics, health) }
                    usleep(100_000)
                }
            }
            let up = try until { metrics, _ in EndToEnd.Metrics.value(metrics, "fastcapa_nic_link_up", port) == 1 }
            #expect(up.health.0 == 200 && up.health.1.hasPrefix("healthy"), "\(up.health)")
            // veth says 10 Gb/s.
            #expect(EndToEnd.Metrics.value(up.metrics, "fastcapa_nic_link_speed_bytes_per_second", port) == 1.25e9)
            #expect(EndToEnd.Metrics.value(up.metrics, "fastcapa_embedded_broker") == 0)
            #expect(EndToEnd.Metrics.value(up.metrics, "fastcapa_nic_idle_seconds", port) != nil)

            try namespace.run(["ip", "link", "set", namespace.senderEnd, "down"])
            let down = try until { metrics, health in
                EndToEnd.Metrics.value(metrics, "fastcapa_nic_link_up", port) == 0 && health.1.hasPrefix("degraded")
            }
            #expect(EndToEnd.Metrics.value(down.metrics, "fastcapa_nic_link_up", port) == 0, "\(down.metrics)")
            #expect(down.health.0 == 200 && down.health.1 == "degraded: port 0 link down\n", "\(down.health)")
            #expect(EndToEnd.Metrics.value(down.metrics, "fastcapa_nic_link_speed_bytes_per_second", port) == nil)
            #expect((EndToEnd.Metrics.value(down.metrics, "fastcapa_nic_idle_seconds", port) ?? 0) > 0)
            // Prometheus' linter on the scrape with the link down (a gauge unregistered in between).
            let scraped = TestFiles.temporaryDirectory().appendingPathComponent("metrics.txt").path
            try down.metrics.write(toFile: scraped, atomically: true, encoding: .utf8)
            let lint = try Harness.run("/bin/sh", ["-c", "promtool check metrics < '\(scraped)'"], timeout: 30)
            #expect(lint.status == 0 && lint.stdout.isEmpty && lint.stderr.isEmpty, "promtool: \(lint)")

            try namespace.run(["ip", "link", "set", namespace.senderEnd, "up"])
            let back = try until { metrics, health in
                EndToEnd.Metrics.value(metrics, "fastcapa_nic_link_up", port) == 1 && health.1.hasPrefix("healthy")
            }
            #expect(back.health.0 == 200 && back.health.1.hasPrefix("healthy"), "\(back.health)")
            probe.signal(SIGTERM)
            let result = probe.wait(timeout: 60)
            #expect(result.status == 0, "\(result.stderr)")
        }

        struct DropCase: CustomTestStringConvertible, Sendable {
            var vdev: String
            var testDescription: String { vdev }
        }

        /// A probe that sleeps through a burst: the packet sockets' buffers
        /// overflow, and the kernel's drops are reported before the probe, in the
        /// accounting, the table and /metrics; with what the probe received they
        /// make up what tcpdump saw.
        @Test(arguments: [
            DropCase(vdev: "net_pcap0,iface=fcA"), DropCase(vdev: "net_af_packet0,iface=fcA,framecnt=64"),
        ])
        func kernelDropsAreCountedBeforeTheProbe(_ input: DropCase) throws {
            let namespace = try Harness.VethNamespace()
            let frames = SyntheticCaptures.flows(count: 1500, packetsPerFlow: 2, frameLength: 1514).map(\.data)
            let replay = try Harness.writePcap(
                frames.map { PcapRecord(micros: 0, data: $0) },
                to: TestFiles.temporaryDirectory(),
                name: "burst.pcap"
            )
            let broker = try Harness.Broker(wrapper: namespace.wrapper)
            let probe = try Harness.Child(
                "/usr/bin/env",
                namespace.wrapper + [Harness.binary] + Harness.eal(lcores: 3, vdevs: [input.vdev]) + [
                    "--", "--stats-interval", "1", "--idle-spin-polls", "1", "--idle-sleep-max-us", "1000000",
                    "--metrics-address", "127.0.0.1:0", "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            // The metrics server says where it listens just after "capturing".
            let ready = Date().addingTimeInterval(20)
            var metricsAddress: String?
            while metricsAddress == nil && Date() < ready {
                metricsAddress = probe.stderr.range(of: #"http://[0-9.]+:[0-9]+"#, options: .regularExpression).map {
                    String(probe.stderr[$0])
                }
                if metricsAddress == nil { usleep(50_000) }
            }
            #expect(metricsAddress != nil, "the probe says where it serves metrics: \(probe.stderr)")
            // Long enough for the receive lcore to reach its longest sleep.
            sleep(3)
            let tcpdump = try Harness.Tcpdump(namespace, interface: namespace.probeEnd)
            let replayed = try namespace.replay(replay, pps: 0)
            #expect(replayed.status == 0, "\(replayed.stderr)")
            sleep(3)
            let oracle = try tcpdump.stop()
            let metrics = try Harness.run(
                "/usr/bin/env",
                namespace.wrapper + ["curl", "-s", "\(metricsAddress ?? "http://127.0.0.1:1")/metrics"],
                timeout: 30
            ).stdout
            probe.signal(SIGTERM)
            let result = probe.wait(timeout: 60)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced && result.accounting["dropped"] == 0)

            let kernelDropped = result.accounting["nic_kernel_dropped"] ?? -1
            let received = result.accounting["received"] ?? -1
            #expect(oracle.count == frames.count)
            #expect(kernelDropped > 0, "the burst overflowed the socket's buffer")
            #expect(received + kernelDropped == oracle.count, "received \(received) + kernel dropped \(kernelDropped)")
            #expect(result.stdout.contains("kernel dropped \(kernelDropped) (not part of received)"))
            #expect(
                EndToEnd.Metrics.value(metrics, "fastcapa_nic_kernel_dropped_packets_total", "port=\"0\"").map {
                    Int($0)
                }
                    == kernelDropped,
                "\(metrics)"
            )
            // The table's NIC line counts them among its drops (label, in, in/s, queued, out, out/s, drops, filtered).
            let nicLine = result.stdout.split(separator: "\n").last { $0.contains("[nic]") }
            let nicFields = nicLine?.split(separator: " ").map(String.init) ?? []
            #expect(nicFields.count == 8 && nicFields[6] == "\(kernelDropped)", "\(nicLine ?? "")")
        }
    }
}
