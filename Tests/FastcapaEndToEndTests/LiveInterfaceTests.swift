import FastcapaCapture
import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// A live interface: net_af_packet on one end of a veth pair inside a
    /// network namespace the test creates, fed by tcpreplay on the other end.
    @Suite struct LiveInterface {
        @Test func packetsFromAVethPairArriveIntactAndFlowsKeepTheirPartition() throws {
            let namespace = "fcap\(UInt32.random(in: 0...999_999))"
            let inNamespace = ["ip", "netns", "exec", namespace]
            func ip(_ arguments: [String]) throws {
                let result = try Harness.run("/usr/bin/env", arguments, timeout: 30)
                guard result.status == 0 else {
                    throw HarnessError("\(arguments.joined(separator: " ")): \(result.stderr)")
                }
            }
            try ip(["ip", "netns", "add", namespace])
            defer { _ = try? Harness.run("/usr/bin/env", ["ip", "netns", "del", namespace], timeout: 30) }
            try ip(["ip", "-n", namespace, "link", "add", "fcA", "type", "veth", "peer", "name", "fcB"])
            // No IPv6 in the namespace: the kernel's own neighbour discovery stays off the wire.
            try ip(
                inNamespace + [
                    "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                ]
            )
            for link in ["lo", "fcA", "fcB"] { try ip(["ip", "-n", namespace, "link", "set", link, "up"]) }

            // Ethernet frames a veth carries unchanged: untagged, 60 to 1514 bytes.
            let directory = TestFiles.temporaryDirectory()
            let all = SyntheticCaptures.protocolMix(count: 1200)
            // Not IPv4 fragments either: DPDK 22.11's af_packet driver has the
            // kernel reassemble them (PACKET_FANOUT_FLAG_DEFRAG).
            let frames = all.filter { record in
                guard (60...1514).contains(record.data.count) else { return false }
                let etherType = UInt16(record.data[12]) << 8 | UInt16(record.data[13])
                let fragment =
                    etherType == 0x0800 && (UInt16(record.data[20]) << 8 | UInt16(record.data[21])) & 0x3FFF != 0
                return etherType != 0x8100 && etherType != 0x88A8 && etherType >= 0x0600 && !fragment
            }.prefix(600)
            let replay = try Harness.writePcap(Array(frames), to: directory, name: "replay.pcap")

            let broker = try Harness.Broker(partitions: 4, wrapper: inNamespace)
            let eal = Harness.eal(lcores: 5, vdevs: ["net_af_packet0,iface=fcA,qpairs=2"])
            let start = UInt64(Date().timeIntervalSince1970 * 1_000_000)
            let probe = try Harness.Child(
                "/usr/bin/env",
                inNamespace + [Harness.binary] + eal + [
                    "--", "-q", "2", "--partitioner", "flow", "--stats-interval", "0",
                    "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            let ready = Date().addingTimeInterval(20)
            while !probe.stderr.contains("capturing") && Date() < ready { usleep(50_000) }
            let replayed = try Harness.run(
                "/usr/bin/env",
                inNamespace + ["tcpreplay", "-q", "-i", "fcB", "--pps", "3000", replay]
            )
            #expect(replayed.status == 0, "\(replayed.stderr)")
            sleep(2)
            probe.signal(SIGTERM)
            let result = probe.wait(timeout: 60)
            let end = UInt64(Date().timeIntervalSince1970 * 1_000_000)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            #expect(result.accounting["dropped"] == 0)
            #expect(result.accountingList("received_per_queue").count == 2)

            let messages = try Harness.kcatRead(broker: broker.address, wrapper: inNamespace)
            #expect(messages.count == result.accounting["delivered"])
            // Every frame sent arrives intact (the kernel may add none of its own, but allow it).
            var received: [[UInt8]: Int] = [:]
            for message in messages { received[message.value, default: 0] += 1 }
            var missing = 0
            for frame in frames {
                if let count = received[frame.data], count > 0 {
                    received[frame.data] = count - 1
                } else {
                    missing += 1
                }
            }
            #expect(missing == 0, "\(missing) of \(frames.count) replayed frames did not arrive intact")
            // No device timestamps on af_packet: keys are the wall clock at capture.
            #expect(messages.allSatisfy { ($0.micros ?? 0) >= start && ($0.micros ?? 0) <= end })
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
    }
}
