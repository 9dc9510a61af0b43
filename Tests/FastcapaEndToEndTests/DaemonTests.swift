import FastcapaTestSupport
import Foundation
import Glibc
import Testing

extension EndToEnd {
    /// Running under systemd: readiness and stopping are notified on $NOTIFY_SOCKET.
    @Suite struct Daemon {
        @Test func notifiesSystemdWhenCapturingAndWhenStopping() throws {
            let path = TestFiles.temporaryDirectory().appendingPathComponent("notify").path
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            try #require(fd >= 0)
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            try #require(bound == 0)

            let sample = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
            let result = try Harness.run(
                "/usr/bin/env",
                ["NOTIFY_SOCKET=\(path)", Harness.binary]
                    + Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(sample)"]) + [
                        "--", "--idle-exit", "3", "--stats-interval", "0",
                    ]
            )
            #expect(result.status == 0, "\(result.stderr)")

            var messages: [String] = []
            var buffer = [UInt8](repeating: 0, count: 512)
            while true {
                let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if count <= 0 { break }
                messages.append(String(decoding: buffer[0..<count], as: UTF8.self))
            }
            #expect(messages.first?.hasPrefix("READY=1") == true, "\(messages)")
            // While capturing: the rates, the totals and the health, about once a second. With no broker
            // configured the health says that the embedded broker is in use.
            let statuses = messages.filter { $0.hasPrefix("STATUS=capturing: ") }
            #expect(statuses.count >= 2, "\(messages)")
            #expect(
                statuses.allSatisfy {
                    $0.contains(" pkt/s received, ") && $0.contains("; degraded: no Kafka broker configured")
                },
                "\(statuses)"
            )
            #expect(statuses.last?.contains("; 236 received, 0 dropped;") == true, "\(statuses)")
            // The stop: the stop timeout extended to the stop's bound (drain-timeout 10 s + 5 s) and a margin of 5 s.
            let stopping = try #require(messages.firstIndex { $0.hasPrefix("STOPPING=1\n") }, "\(messages)")
            let extended = "EXTEND_TIMEOUT_USEC=20000000\nSTATUS=draining (no packet for 3 s)"
            #expect(messages[stopping].contains(extended), "\(messages)")
            #expect(!messages[stopping...].contains { $0.hasPrefix("STATUS=capturing") }, "\(messages)")
            for message in messages[stopping...] {
                let value = message.split(separator: "\n").first { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") }
                let microseconds = value.flatMap { Int($0.dropFirst("EXTEND_TIMEOUT_USEC=".count)) } ?? 0
                #expect(microseconds > 5_000_000 && microseconds <= 20_000_000, "\(message)")
            }
        }

        /// logrotate renames the files, then sends SIGHUP (its `postrotate`): the
        /// probe goes on in new files by the same paths and writes no more to the
        /// renamed ones.
        @Test func sighupReopensTheStatisticsFileAndTheCounterTrace() throws {
            let directory = TestFiles.temporaryDirectory()
            let stats = directory.appendingPathComponent("stats.json").path
            let trace = directory.appendingPathComponent("trace.txt").path
            let broker = try Harness.Broker()
            let probe = try Harness.Child(
                Harness.binary,
                Harness.eal(lcores: 3, vdevs: ["net_null0"]) + [
                    "--", "--stats-interval", "1", "-s", stats, "--counter-trace", trace,
                    "--counter-trace-interval-ms", "50", "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            func size(_ path: String) -> Int {
                ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
            }
            func waitForContent(_ paths: [String]) throws {
                let deadline = Date().addingTimeInterval(20)
                while paths.contains(where: { size($0) == 0 }) && Date() < deadline { usleep(100_000) }
                try #require(paths.allSatisfy { size($0) > 0 }, "\(probe.stderr)")
            }
            try waitForContent([stats, trace])
            try FileManager.default.moveItem(atPath: stats, toPath: stats + ".1")
            try FileManager.default.moveItem(atPath: trace, toPath: trace + ".1")
            probe.signal(SIGHUP)
            try waitForContent([stats, trace])
            let rotated = (size(stats + ".1"), size(trace + ".1"))
            usleep(1_500_000)
            #expect(size(stats + ".1") == rotated.0 && size(trace + ".1") == rotated.1, "nothing more in the old files")
            #expect(size(trace) > 0 && size(stats) > 0)
            probe.signal(SIGTERM)
            let result = probe.wait(timeout: 60)
            #expect(result.status == 0, "\(result.stderr)")
            let lines = try String(contentsOfFile: stats, encoding: .utf8).split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("{\"fastcapa\":") }, "the probe's own counters go on in the new file")
        }
    }
}
