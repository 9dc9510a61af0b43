import FastcapaTestSupport
import Foundation
import Glibc
import Testing

extension EndToEnd {
    /// Running under systemd: readiness and stopping are notified on $NOTIFY_SOCKET.
    @Suite struct Daemon {
        /// systemd's end of $NOTIFY_SOCKET: a datagram socket the probe sends its states to.
        final class NotifySocket {
            let path = TestFiles.temporaryDirectory().appendingPathComponent("notify").path
            let fd: Int32

            init() throws {
                fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
                try #require(fd >= 0)
                var address = sockaddr_un()
                address.sun_family = sa_family_t(AF_UNIX)
                withUnsafeMutableBytes(of: &address.sun_path) { [path] in $0.copyBytes(from: Array(path.utf8) + [0]) }
                let bound = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
                try #require(bound == 0)
            }

            /// The next message, waiting up to `timeoutMs`.
            func receive(timeoutMs: Int32) -> String? {
                var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&entry, 1, timeoutMs) == 1 else { return nil }
                var buffer = [UInt8](repeating: 0, count: 512)
                let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
            }

            deinit { close(fd) }
        }

        @Test func notifiesSystemdWhenCapturingAndWhenStopping() throws {
            let notify = try NotifySocket()
            let path = notify.path

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
            while let message = notify.receive(timeoutMs: 0) { messages.append(message) }
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
            // The stop: the stop timeout extended to what is left of the stop's bound (drain-timeout 10 s + 5 s
            // from when the stop was asked for, a few ms before) and a margin of 5 s.
            let stopping = try #require(messages.firstIndex { $0.hasPrefix("STOPPING=1\n") }, "\(messages)")
            let extended = try #require(
                messages[stopping].firstMatch(
                    of: #/EXTEND_TIMEOUT_USEC=([0-9]+)\nSTATUS=draining \(no packet for 3 s\)/#
                ),
                "\(messages)"
            )
            #expect((19_500_000...20_000_000).contains(Int(extended.1) ?? 0), "\(messages[stopping])")
            #expect(!messages[stopping...].contains { $0.hasPrefix("STATUS=capturing") }, "\(messages)")
            for message in messages[stopping...] {
                let value = message.split(separator: "\n").first { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") }
                let microseconds = value.flatMap { Int($0.dropFirst("EXTEND_TIMEOUT_USEC=".count)) } ?? 0
                #expect(microseconds > 5_000_000 && microseconds <= 20_000_000, "\(message)")
            }
        }

        /// systemd's watchdog (`WatchdogSec=`): WATCHDOG=1 every half of $WATCHDOG_USEC while every lcore turns
        /// its loop; none while the receive lcore is stopped (ptrace stops that one thread, as a driver call that
        /// never returns would hold it), with an error naming it; again once it runs; and the stop is clean.
        @Test func theWatchdogIsFedOnlyWhileEveryLcoreTurnsItsLoop() throws {
            let notify = try NotifySocket()
            let broker = try Harness.Broker()
            let probe = try Harness.Child(
                "/usr/bin/env",
                ["NOTIFY_SOCKET=\(notify.path)", "WATCHDOG_USEC=1000000", Harness.binary]
                    + Harness.eal(lcores: 3, vdevs: ["net_null0"]) + [
                        "--", "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)",
                    ]
            )
            var messages: [(at: Date, text: String)] = []
            func collect(until deadline: Date, while condition: () -> Bool = { true }) {
                while Date() < deadline && condition() {
                    if let text = notify.receive(timeoutMs: 50) { messages.append((Date(), text)) }
                }
            }
            collect(until: Date().addingTimeInterval(30)) { !messages.contains { $0.text.hasPrefix("READY=1") } }
            try #require(messages.contains { $0.text.hasPrefix("READY=1") }, "\(probe.stderr)")
            collect(until: Date().addingTimeInterval(2))
            #expect(messages.filter { $0.text == "WATCHDOG=1" }.count >= 3, "\(messages.map(\.text))")
            #expect(probe.stderr.contains("WATCHDOG=1 every 0.5 s while every worker lcore turns its loop"))

            // The receive lcore's thread (EAL names it rte-worker-LCORE), stopped for 3 s.
            let lcore = try #require(
                probe.stderr.firstMatch(of: /port 0 queue 0: receive on lcore ([0-9]+)/).map { String($0.1) },
                "\(probe.stderr)"
            )
            let tasks = "/proc/\(probe.process.processIdentifier)/task"
            let thread = try #require(
                try FileManager.default.contentsOfDirectory(atPath: tasks).first { tid in
                    (try? String(contentsOfFile: "\(tasks)/\(tid)/comm", encoding: .utf8)) == "rte-worker-\(lcore)\n"
                }
            )
            let stall = try Harness.Child("/usr/bin/env", ["python3", "-c", Self.stallThread, thread, "3"])
            collect(until: Date().addingTimeInterval(10)) { !stall.stdout.contains("stopped") }
            let stopped = Date()
            collect(until: Date().addingTimeInterval(10)) { stall.process.isRunning }
            let resumed = Date()
            #expect(stall.wait(timeout: 5).status == 0, "\(stall.stderr)")
            collect(until: Date().addingTimeInterval(2))
            let pings = messages.filter { $0.text == "WATCHDOG=1" }.map(\.at)
            // A check within 0.5 s sees the lcore still, and the next ones too: none from 1.2 s into the stall.
            let during = pings.filter { $0 > stopped.addingTimeInterval(1.2) && $0 < resumed }
            #expect(resumed.timeIntervalSince(stopped) > 2.5)
            #expect(
                during.isEmpty,
                "WATCHDOG=1 while lcore \(lcore) was stopped: \(during.map { $0.timeIntervalSince(stopped) })"
            )
            #expect(pings.contains { $0 > resumed }, "WATCHDOG=1 resumes: \(probe.stderr)")
            #expect(
                probe.stderr.contains("lcore \(lcore) (receive port 0 queue 0) has not turned its loop in 0.5 s"),
                "\(probe.stderr)"
            )
            #expect(probe.stderr.contains("lcore \(lcore) (receive port 0 queue 0) turns its loop again"))
            probe.signal(SIGTERM)
            let result = probe.wait(timeout: 60)
            #expect(result.status == 0 && result.balanced, "\(result.stderr)")
        }

        /// Stops one thread (argv[1], a tid) for argv[2] seconds with ptrace, then lets it go; prints
        /// `stopped` once the thread is stopped. ptrace is variadic, which Swift cannot call.
        static let stallThread = """
            import ctypes, sys, time
            libc = ctypes.CDLL(None, use_errno=True)
            tid, seconds = int(sys.argv[1]), float(sys.argv[2])
            PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT, WALL = 17, 0x4206, 0x4207, 0x40000000
            if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0 or libc.ptrace(PTRACE_INTERRUPT, tid, None, None) != 0:
                sys.exit("ptrace: errno %d" % ctypes.get_errno())
            status = ctypes.c_int(0)
            libc.waitpid(tid, ctypes.byref(status), WALL)
            print("stopped", flush=True)
            time.sleep(seconds)
            libc.ptrace(PTRACE_DETACH, tid, None, None)
            """

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
