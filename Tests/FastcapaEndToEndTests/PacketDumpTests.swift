import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// rte_pdump: `dpdk-dumpcap` attaches to a running probe (a DPDK secondary
    /// process, found by the probe's `--file-prefix`) and copies what its ports
    /// receive, while the probe captures on. Secondary processes share the
    /// primary's hugepage memory, so this needs hugepages (a hugetlbfs mount with
    /// free pages); without them it is reported as skipped.
    @Suite struct PacketDump {
        static var hugepagesFree: Int {
            let info = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
            let line = info.split(separator: "\n").first { $0.hasPrefix("HugePages_Free:") }
            return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        }

        static var hugetlbfsMounted: Bool {
            ((try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? "").contains(" hugetlbfs ")
        }

        @Test(
            .enabled(
                if: hugepagesFree >= 64 && hugetlbfsMounted,
                "needs 64 free hugepages and a hugetlbfs mount (e.g. echo 128 > /proc/sys/vm/nr_hugepages; mount -t hugetlbfs none /dev/hugepages)"
            )
        )
        func dpdkDumpcapWatchesTheProbesPortLive() async throws {
            let broker = try Harness.Broker()
            let prefix = "fastcapa-dump-\(getpid())"
            let sample = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
            let eal = [
                "-m", "128", "--no-pci", "--file-prefix=\(prefix)", "--lcores=0@0,1@1,2@1",
                "--log-level=lib.eal:warning", "--vdev=net_pcap0,rx_pcap=\(sample),infinite_rx=1",
            ]
            let probe = try Harness.Child(
                Harness.binary,
                eal + [
                    "--", "--stats-interval", "0", "--ring-full", "wait", "-f", "tcp", "-X",
                    "bootstrap.servers=\(broker.address)",
                ]
            )
            defer { try? FileManager.default.removeItem(atPath: "/var/run/dpdk/\(prefix)") }
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline && !probe.stderr.contains("dpdk-dumpcap can watch the ports") {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(probe.stderr.contains("dpdk-dumpcap --file-prefix=\(prefix) -i PORT"), "\(probe.stderr)")
            let output = TestFiles.temporaryDirectory().appendingPathComponent("dump.pcap").path
            let dump = try Harness.run(
                "/usr/bin/env",
                ["dpdk-dumpcap", "--file-prefix=\(prefix)", "-i", "0", "-c", "200", "-P", "-q", "-w", output],
                timeout: 60
            )
            #expect(dump.status == 0, "\(dump.stderr)")
            probe.signal(SIGTERM)
            let result = probe.wait(timeout: 60)
            #expect(result.status == 0, "\(result.stderr.suffix(1500))")
            #expect(result.balanced)
            let dumped = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))).records
            // dumpcap sees what the port receives, before the probe's own filter.
            let replay = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: sample)))).records
            #expect(dumped.count >= 200, "dumpcap stops after the burst that reaches -c")
            #expect(dumped.allSatisfy { record in replay.contains { $0.data == record.data } })
            #expect(dumped.contains { $0.data.count > 13 && $0.data[12] == 0x08 && $0.data[23] != 6 }, "not only TCP")
            print(
                "packet dump: dpdk-dumpcap copied \(dumped.count) packets while the probe delivered \(result.accounting["delivered"] ?? 0)"
            )
        }
    }
}
