import FastcapaTestSupport
import Foundation
import Testing

extension EndToEnd {
    @Suite struct OperatorInterface {
        /// The CPUs each thread of `pid` may run on, by thread name.
        static func threadCPUs(_ pid: Int32) -> [(name: String, cpus: String)] {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            return tasks.compactMap { task in
                guard let name = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8),
                    let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8),
                    let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
                else { return nil }
                return (
                    name.trimmingCharacters(in: .whitespacesAndNewlines),
                    line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
                )
            }
        }

        /// librdkafka's threads leave the worker lcores' CPUs: with every lcore
        /// on CPU 0, `auto` puts them on CPU 1; `main-lcore` keeps DPDK's pinning.
        @Test(arguments: [("auto", "1"), ("main-lcore", "0")])
        func controlThreadsLeaveTheWorkerCores(policy: String, expected: String) async throws {
            guard ProcessInfo.processInfo.activeProcessorCount >= 2 else { return }
            let broker = try Harness.Broker()
            let eal = [
                "--no-huge", "--no-pci", "-m", "512", "--lcores=0@0,1@0,2@0", "--log-level=lib.eal:warning",
                "--vdev=net_pcap0,rx_pcap=\(TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path),infinite_rx=1",
            ]
            let child = try Harness.Child(
                Harness.binary,
                eal + [
                    "--", "--control-cores", policy, "--ring-full", "wait",
                    "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            var threads: [(name: String, cpus: String)] = []
            for _ in 0..<100 where !threads.contains(where: { $0.name.hasPrefix("rdk:broker") }) {
                try await Task.sleep(for: .milliseconds(100))
                threads = Self.threadCPUs(child.process.processIdentifier)
            }
            child.signal(SIGTERM)
            let result = child.wait(timeout: 30)
            #expect(result.status == 0, "\(result.stderr)")
            let librdkafka = threads.filter { $0.name.hasPrefix("rdk:") }
            #expect(!librdkafka.isEmpty, "librdkafka's threads were seen: \(threads)")
            #expect(librdkafka.allSatisfy { $0.cpus == expected }, "\(policy): \(librdkafka)")
            #expect(
                threads.filter { $0.name.hasPrefix("rte-worker") }.allSatisfy { $0.cpus == "0" },
                "lcores stay where EAL put them"
            )
            #expect(result.stderr.contains("control threads (librdkafka, supervisors) on CPUs \(expected)"))
        }

        /// A Fastcapa command line and Kafka file, unchanged: the file has only a
        /// [kafka-global] group (Fastcapa crashed without [kafka-topic]), and -s
        /// appends librdkafka's statistics JSON, one object per line.
        @Test func fastcapaCommandLineAndKafkaFileWorkUnchanged() throws {
            let directory = TestFiles.temporaryDirectory()
            let broker = try Harness.Broker()
            let ini = directory.appendingPathComponent("kafka.ini").path
            try
                "# Fastcapa's file\n[kafka-global]\nbootstrap.servers = \(broker.address)\nstatistics.interval.ms = 500\n"
                .write(toFile: ini, atomically: true, encoding: .utf8)
            let stats = directory.appendingPathComponent("stats.json").path
            let sample = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
            let result = try Harness.probe(
                for: 3,
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(sample),infinite_rx=1"]),
                [
                    "-p", "0x01", "-b", "32", "-w", "256", "-d", "1024", "-x", "2048", "-q", "1", "-t", "pcap", "-c",
                    ini, "-s", stats,
                    "--ring-full", "wait", "--stats-interval", "1",
                ]
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect((result.accounting["delivered"] ?? 0) > 0)
            #expect(result.accounting["delivered"] == result.accounting["received"])
            let lines = try String(contentsOfFile: stats, encoding: .utf8).split(separator: "\n")
            let objects = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let librdkafka = objects.filter { $0?["type"] as? String == "producer" }
            let own = objects.filter { $0?["fastcapa"] != nil }
            #expect(librdkafka.count >= 2, "librdkafka's statistics every 500 ms for 3 s")
            #expect(librdkafka.allSatisfy { $0?["client_id"] as? String == "fastcapa-tx0" })
            #expect(own.count >= 1, "the probe's own snapshot every stats interval")
            #expect(own.allSatisfy { ($0?["xstats"] as? [String: Any])?["0"] != nil }, "the port's extended statistics")
            let ports = own.map { ($0?["ports"] as? [[String: Any]]) ?? [] }
            #expect(
                ports.allSatisfy { $0.count == 1 && $0[0]["port"] as? Int == 0 && $0[0]["link_up"] as? Bool == true },
                "each port's link: \(ports)"
            )
            #expect(librdkafka.count + own.count == lines.count, "one JSON object per line")
            #expect(try Harness.kcatCount(broker: broker.address, partitions: 1) == result.accounting["delivered"])
        }

        /// The config file alone (EAL arguments included) runs a capture, and
        /// --print-config shows what it would run with.
        @Test func configFileAloneRunsACapture() throws {
            let directory = TestFiles.temporaryDirectory()
            let broker = try Harness.Broker()
            let sample = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
            let eal = Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(sample)"]).map { "\"\($0)\"" }.joined(
                separator: ", "
            )
            let config = directory.appendingPathComponent("fastcapa.yaml").path
            try """
            eal: [\(eal)]
            ring-full: wait
            idle-exit: 2
            stats-interval: 0
            kafka:
              bootstrap.servers: \(broker.address)
              sasl.password: hunter2
            """.write(toFile: config, atomically: true, encoding: .utf8)
            let printed = try Harness.run(Harness.binary, ["--config", config, "--print-config"])
            #expect(printed.status == 0)
            #expect(printed.stdout.contains("ring-full: \"wait\""))
            #expect(printed.stdout.contains("[redacted]") && !printed.stdout.contains("hunter2"))
            // sasl.password without a SASL mechanism only warns in librdkafka; drop it for the run.
            try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(
                of: "  sasl.password: hunter2",
                with: ""
            )
            .write(toFile: config, atomically: true, encoding: .utf8)
            let result = try Harness.run(Harness.binary, ["--config", config], timeout: 60)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.accounting["delivered"] == 236)
        }
    }
}
