import FastcapaTestSupport
import Foundation
import Glibc
import PcapFormat
import Testing

extension EndToEnd {
    /// Faults that could crash the probe, stall it or lose data without a word,
    /// each provoked on purpose: the probe (or `consume`) must survive it, say
    /// so, and keep its accounting.
    @Suite(.timeLimit(.minutes(3))) struct SilentFailures {
        /// A full disk under -s and --counter-trace (/dev/full: every write fails
        /// with ENOSPC): the lines are lost, counted and reported once, and the
        /// capture goes on to a balanced stop. A failed write must not trap
        /// (FileHandle.write would, and the probe would die with SIGTRAP).
        @Test func aFullDiskUnderTheStatisticsFilesLosesLinesNotTheProbe() async throws {
            let broker = try Harness.Broker()
            let probe = try Reliability.endless(
                broker,
                [
                    "-s", "/dev/full", "--counter-trace", "/dev/full", "--stats-interval", "1",
                    "--metrics-address", "127.0.0.1:0",
                ]
            )
            let base = try await Metrics.address(probe)
            try await Task.sleep(for: .seconds(3))
            let scrape = try await Metrics.get("\(base)/metrics").body
            let (result, _) = Reliability.stop(probe)
            #expect(!result.signaled && result.status == 0, "status \(result.status): \(result.stderr.suffix(2000))")
            #expect(result.balanced)
            #expect((result.accounting["delivered"] ?? 0) > 0)
            for role in ["statistics file (-s) '/dev/full'", "counter trace (--counter-trace) '/dev/full'"] {
                #expect(
                    result.stderr.contains("cannot write the \(role): No space left on device"),
                    "\(result.stderr.suffix(3000))"
                )
            }
            #expect(
                result.stderr.components(separatedBy: "cannot write the counter trace").count - 1 == 1,
                "reported once per episode, not once per line"
            )
            let lost = scrape.split(separator: "\n").first {
                $0.hasPrefix("fastcapa_output_lost_lines_total") && $0.contains("file=\"trace\"")
                    && $0.contains("reason=\"write_error\"")
            }
            #expect(lost.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0 > 0, "\(scrape.prefix(4000))")
        }

        /// -s and --counter-trace on FIFOs that nobody reads (a hung NFS mount
        /// behaves alike): each write blocks for ever. A writer thread per file
        /// waits, not the sampler: the reload and the stop go through, and the
        /// stop says what the files did not take. A sampler writing them itself
        /// would block inside its RCU read section: snapshots would stop, the
        /// reload's grace period never come and the stop hang.
        @Test func statisticsFilesThatBlockStallNeitherReloadsNorTheStop() async throws {
            let (paths, readers) = try Reliability.blockedFifos(in: TestFiles.temporaryDirectory())
            defer { for reader in readers { close(reader) } }
            let broker = try Harness.Broker()
            let probe = try Reliability.endless(
                broker,
                [
                    "-s", paths[0], "--counter-trace", paths[1], "--counter-trace-interval-ms", "1", "--drain-timeout",
                    "2",
                ]
            )
            try await Reliability.waitFor("capturing", in: probe)
            try await Task.sleep(for: .seconds(3))  // librdkafka's statistics and the trace fill both pipes
            probe.signal(SIGHUP)
            try await Reliability.waitFor("SIGHUP: producer reloaded", in: probe, seconds: 15)
            let (result, seconds) = Reliability.stop(probe)
            #expect(!result.signaled && result.status == 0, "status \(result.status): \(result.stderr.suffix(2000))")
            #expect(result.balanced)
            #expect(seconds < 2 + 5, "the stop took \(seconds) s")
            #expect(result.stderr.contains("still had not taken the last lines"), "\(result.stderr.suffix(2000))")
        }

        /// A FIFO for -s with a reader that the test opens and closes: the probe's own
        /// open at start finds the reader, so it does not wait.
        final class Fifo {
            let path: String
            private var reader: Int32
            init() throws {
                path = TestFiles.temporaryDirectory().appendingPathComponent("stats.fifo").path
                try #require(mkfifo(path, 0o600) == 0)
                reader = open(path, O_RDONLY | O_NONBLOCK)
                try #require(reader >= 0)
            }
            /// What the reader can read now.
            func read() -> String {
                var bytes: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65536)
                while reader >= 0, case let count = Glibc.read(reader, &buffer, buffer.count), count > 0 {
                    bytes += buffer[..<count]
                }
                return String(decoding: bytes, as: UTF8.self)
            }
            /// The reader exits: writes fail with EPIPE, and a blocking open for writing would wait for ever.
            func closeReader() {
                if reader >= 0 { close(reader) }
                reader = -1
            }
            deinit { closeReader() }
        }

        /// SIGHUP (logrotate) while -s names a FIFO whose reader has gone, then
        /// SIGTERM: the writer's thread opens the file again without waiting for a
        /// reader, keeps the old file, and the stop drains within its bound with the
        /// accounting. A blocking open() on the control plane's actor, which also
        /// watches for the stop, would hide the SIGTERM: only SIGKILL would end it.
        @Test func aSighupWithTheStatisticsFifosReaderGoneDoesNotHangTheStop() async throws {
            let fifo = try Fifo()
            let broker = try Harness.Broker()
            let probe = try Reliability.endless(
                broker,
                ["-s", fifo.path, "--stats-interval", "1", "--drain-timeout", "2"]
            )
            try await Reliability.waitFor("capturing", in: probe)
            try await Task.sleep(for: .seconds(2))
            #expect(fifo.read().contains("{\"fastcapa\":"), "the probe wrote -s lines while it had a reader")
            fifo.closeReader()
            probe.signal(SIGHUP)
            try await Task.sleep(for: .seconds(1))
            let asked = Date()
            probe.signal(SIGTERM)
            let result = probe.wait(timeout: 2 + 5 + 3)
            let seconds = Date().timeIntervalSince(asked)
            #expect(!result.signaled && result.status == 0, "status \(result.status): \(result.stderr.suffix(2000))")
            #expect(seconds < 2 + 5, "the stop took \(seconds) s")
            #expect(result.balanced, "\(result.stdout)")
            #expect(
                result.stderr.contains(
                    "SIGHUP: cannot open the statistics file (-s) '\(fifo.path)' again (a FIFO nobody has open for reading)"
                ),
                "\(result.stderr.suffix(3000))"
            )
        }

        /// -s into a FIFO whose reader exits while the probe runs, the probe started
        /// with SIGPIPE's default action (as from a shell, outside systemd, which
        /// ignores it for its services), with and without the metrics server (NIO
        /// ignores SIGPIPE for the process). Each line is a counted write error (the
        /// warning, the stop's summary, the metric) and the probe stops cleanly, not
        /// killed by SIGPIPE with no drain and no accounting.
        @Test(arguments: [false, true])
        func aStatisticsFifoWhoseReaderExitsLosesLinesNotTheProbe(metrics: Bool) async throws {
            let fifo = try Fifo()
            let broker = try Harness.Broker()
            let probe = try Harness.Child(
                "/usr/bin/env",
                ["--default-signal=PIPE", Harness.binary]
                    + Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(Reliability.sample),infinite_rx=1"]) + [
                        "--", "--stats-interval", "1", "-X", "bootstrap.servers=\(broker.address)", "-s", fifo.path,
                    ] + (metrics ? ["--metrics-address", "127.0.0.1:0"] : [])
            )
            let base = metrics ? try await Metrics.address(probe) : nil
            try await Reliability.waitFor("capturing", in: probe)
            try await Task.sleep(for: .seconds(2))
            #expect(fifo.read().contains("{\"fastcapa\":"), "the probe wrote -s lines while it had a reader")
            fifo.closeReader()
            try await Task.sleep(for: .seconds(3))  // three more lines, each a write error
            #expect(probe.process.isRunning, "the probe died: \(probe.stderr.suffix(2000))")
            if let base {
                let scrape = try await Metrics.get("\(base)/metrics").body
                let lost = scrape.split(separator: "\n").first {
                    $0.hasPrefix("fastcapa_output_lost_lines_total") && $0.contains("file=\"statistics\"")
                        && $0.contains("reason=\"write_error\"")
                }
                #expect(lost.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0 > 0, "\(scrape.prefix(4000))")
            }
            let (result, _) = Reliability.stop(probe)
            #expect(!result.signaled && result.status == 0, "status \(result.status): \(result.stderr.suffix(2000))")
            #expect(result.balanced, "\(result.stdout)")
            #expect(
                result.stderr.contains("cannot write the statistics file (-s) '\(fifo.path)': Broken pipe"),
                "\(result.stderr.suffix(3000))"
            )
            #expect(
                result.stderr.contains(
                    #/the statistics file \(-s\) '[^']+' lost [1-9][0-9]* lines: [1-9][0-9]* to write errors/#
                ),
                "\(result.stderr.suffix(3000))"
            )
        }

        /// SIGHUP with Kafka properties that pass the configuration's checks but
        /// that rd_kafka_new refuses (idempotence with acks=1): the reload is
        /// refused, and restarts keep the running properties. Kept for later
        /// restarts, the refused ones would leave the next producer failure
        /// unrepaired ("cannot create a new producer; will retry" for ever).
        @Test func propertiesLibrdkafkaRefusesOnSighupLeaveRestartsWorking() async throws {
            let config = TestFiles.temporaryDirectory().appendingPathComponent("fastcapa.yaml").path
            try "kafka:\n  linger.ms: 5\n".write(toFile: config, atomically: true, encoding: .utf8)
            let run = try await Failures.FaultRun(
                "SIGHUP with properties rd_kafka_new refuses, then a fatal error",
                idempotent: true,
                ["--restart-backoff-ms", "20"],
                config: config
            )
            try "kafka:\n  linger.ms: 5\n  acks: 1\n".write(toFile: config, atomically: true, encoding: .utf8)
            run.probe.signal(SIGHUP)
            // Refused before anything applies (librdkafka builds no producer from acks=1 with idempotence).
            try await Reliability.waitFor("the new configuration is refused", in: run.probe)
            run.probe.signal(SIGUSR2)
            try await Reliability.waitFor("producer replaced", in: run.probe, seconds: 10)
            try await Task.sleep(for: .seconds(1))
            let result = run.stop()
            run.checkAndReport(result, restarts: 1, recoveryMs: nil)
            #expect(!result.stderr.contains("cannot create a new producer"), "\(result.stderr.suffix(3000))")
        }

        /// A stop that lands while a SIGHUP's capture filter swap is under way
        /// (held back 1.5 s by a testing variable) waits for the swap: it is
        /// logged, and every program loaded is freed once. A stop that cancelled
        /// the wait would release the pipeline while the swap still loads and
        /// publishes a program into it.
        @Test func aStopWaitsForAFilterSwapUnderWay() async throws {
            let config = TestFiles.temporaryDirectory().appendingPathComponent("fastcapa.yaml").path
            try "filter: udp\n".write(toFile: config, atomically: true, encoding: .utf8)
            let broker = try Harness.Broker()
            let probe = try Harness.Child(
                "/usr/bin/env",
                ["FASTCAPA_TESTING_FILTER_SWAP_DELAY_MS=1500", Harness.binary]
                    + Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(Reliability.sample),infinite_rx=1"]) + [
                        "--", "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)", "--config",
                        config,
                    ]
            )
            try await Reliability.waitFor("capturing", in: probe)
            try await Task.sleep(for: .seconds(1))
            try "filter: tcp\n".write(toFile: config, atomically: true, encoding: .utf8)
            probe.signal(SIGHUP)
            try await Task.sleep(for: .milliseconds(300))  // the swap waits out its delay
            let (result, _) = Reliability.stop(probe)
            #expect(!result.signaled && result.status == 0, "status \(result.status): \(result.stderr.suffix(2000))")
            #expect(result.balanced)
            #expect(result.stderr.contains("SIGHUP: capture filter replaced"), "\(result.stderr.suffix(3000))")
            #expect(
                result.stderr.contains("capture filter programs: 2 loaded, 2 freed"),
                "\(result.stderr.suffix(3000))"
            )
        }

        /// `consume` stopped by SIGINT or SIGTERM: the file gets its name and
        /// holds every packet read, and no partial file is left (the signal's
        /// default action would leave no output file and a hidden
        /// `.NAME.partial-PID`).
        @Test(arguments: [SIGINT, SIGTERM])
        func consumeFinishesItsFileOnAStopSignal(signal: Int32) async throws {
            let directory = TestFiles.temporaryDirectory()
            let records = SyntheticCaptures.protocolMix(count: 300, seed: 21)
            let input = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let broker = try Harness.Broker(partitions: 1)
            let captured = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                ["--idle-exit", "2", "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)"]
            )
            try #require(captured.status == 0, "\(captured.stderr)")
            let output = directory.appendingPathComponent("follow.pcap").path
            let consume = try Harness.Child(
                Harness.binary,
                ["consume", "-b", broker.address, "--follow", "--format", "pcap", "-o", output]
            )
            try await Task.sleep(for: .seconds(4))  // read everything, then wait for more
            consume.signal(signal)
            let result = consume.wait(timeout: 20)
            #expect(!result.signaled && result.status == 0, "status \(result.status): \(result.stderr)")
            #expect(result.stderr.contains("stopped by signal \(signal)"), "\(result.stderr)")
            let file = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: output))))
            #expect(file.records.map(\.data) == records.map(\.data))
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            #expect(!left.contains { $0.contains(".partial-") }, "\(left)")
        }

        /// A signal while following with a count is the end of a following read (exit 0, the file
        /// named, the signal reported), not "only X of N packets arrived" (status 64).
        @Test func consumeFollowingWithACountReportsASignalAsASignal() async throws {
            let directory = TestFiles.temporaryDirectory()
            let records = SyntheticCaptures.protocolMix(count: 50, seed: 25)
            let (_, broker) = try EndToEnd.Consume.captured(records, partitions: 1, in: directory)
            let output = directory.appendingPathComponent("follow.pcap").path
            let consume = try Harness.Child(
                Harness.binary,
                ["consume", "-b", broker.address, "--follow", "-n", "100", "--format", "pcap", "-o", output]
            )
            try await Task.sleep(for: .seconds(4))
            consume.signal(SIGINT)
            let result = consume.wait(timeout: 20)
            #expect(!result.signaled && result.status == 0, "status \(result.status): \(result.stderr)")
            #expect(result.stderr.contains("stopped by signal \(SIGINT)"), "\(result.stderr)")
            #expect(!result.stderr.contains("packets arrived"), "\(result.stderr)")
            let file = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: output))))
            #expect(file.records.count == 50)
        }

        /// A signal while the read has not begun (the metadata, against a broker slower than the timeout) is
        /// reported as a signal, exit 128 + its number, and leaves no file at all (the default action would kill
        /// it and leave `.NAME.partial-PID` behind).
        @Test func consumeStoppedBeforeTheReadBeganLeavesNoPartialFile() async throws {
            let directory = TestFiles.temporaryDirectory()
            let broker = try Harness.Broker(partitions: 1, control: true)
            broker.send("rtt 1 4000")
            let output = directory.appendingPathComponent("window.pcap").path
            let consume = try Harness.Child(
                Harness.binary,
                [
                    "consume", "-b", broker.address, "--since", "1700000000", "--until", "1700000060", "--timeout", "3",
                    "--format", "pcap", "-o", output,
                ]
            )
            try await Task.sleep(for: .seconds(1))
            consume.signal(SIGINT)
            let result = consume.wait(timeout: 30)
            #expect(!result.signaled && result.status == 128 + SIGINT, "status \(result.status): \(result.stderr)")
            #expect(result.stderr.contains("stopped by signal \(SIGINT)"), "\(result.stderr)")
            #expect(result.stderr.contains("before the read began"), "\(result.stderr)")
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            #expect(left.isEmpty, "\(left)")
        }

        /// No write in the process may trap or kill it. A probe whose journal went away (standard error a pipe
        /// nobody reads, named by $JOURNAL_STREAM) captures, drains and accounts as usual: its log lines must not
        /// raise SIGPIPE (or FileHandle's trap). `consume` with standard error closed writes its packets and
        /// exits 0: its summary line must not trap.
        @Test func aGoneJournalOrAClosedStandardErrorNeverStopsTheProbeOrConsume() throws {
            let sample = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
            let broker = try Harness.Broker()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Harness.binary)
            process.arguments =
                Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(sample)"]) + [
                    "--", "--idle-exit", "1", "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)",
                ]
            let output = Pipe()
            let journal = Pipe()
            process.standardOutput = output
            process.standardError = journal
            try journal.fileHandleForReading.close()
            var status = stat()
            try #require(fstat(journal.fileHandleForWriting.fileDescriptor, &status) == 0)
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino)"]
            ) { $1 }
            try process.run()
            try journal.fileHandleForWriting.close()
            let stdout = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationReason == .exit && process.terminationStatus == 0, "\(stdout)")
            #expect(stdout.contains("\"delivered\":236") && stdout.contains("\"balanced\":true"), "\(stdout)")

            let consume = try Harness.run(
                "/bin/sh",
                ["-c", "exec \"$0\" \"$@\" 2>&-", Harness.binary, "consume", "-b", broker.address, "-n", "5"]
            )
            #expect(!consume.signaled && consume.status == 0, "status \(consume.status)")
            #expect(consume.stdout.split(separator: "\n").count == 5)
        }

        /// A capture whose times go backwards (records in reverse time order),
        /// read back with no slack: the file is out of capture-time order, and
        /// `consume` says so, even with --quiet: a file out of order must not pass
        /// unremarked.
        @Test func consumeReportsPacketsOutOfCaptureTimeOrder() throws {
            let directory = TestFiles.temporaryDirectory()
            let mix = SyntheticCaptures.protocolMix(count: 50, seed: 22)
            let records = zip(mix, mix.map(\.micros).reversed()).map { PcapRecord(micros: $1, data: $0.data) }
            let input = try Harness.writePcap(records, to: directory, name: "backwards.pcap")
            let broker = try Harness.Broker(partitions: 1)
            let captured = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                ["--idle-exit", "2", "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)"]
            )
            try #require(captured.status == 0, "\(captured.stderr)")
            let output = directory.appendingPathComponent("out.pcap").path
            let read = try Harness.run(
                Harness.binary,
                ["consume", "-b", broker.address, "--slack", "0", "--quiet", "--format", "pcap", "-o", output]
            )
            #expect(read.status == 0, "\(read.stderr)")
            #expect(read.stderr.contains("49 packets are out of capture-time order"), "\(read.stderr)")
            let file = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: output))))
            #expect(file.records.count == 50)
        }

        /// systemd's MemoryDenyWriteExecute=yes (emulated by a preload that
        /// installs systemd's seccomp rules; the shipped unit leaves it out for
        /// this reason, an operator may add it back) keeps the filter's JIT from
        /// making its code executable. A warning names the setting and the fix
        /// (not "DPDK has no JIT for this platform", which is false on x86-64),
        /// and the filter still filters (interpreted).
        @Test func theFilterSaysWhyItIsNotJitCompiledUnderMemoryDenyWriteExecute() throws {
            let library = try Harness.compilePreload("deny_write_execute")
            let arguments =
                Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(Reliability.sample)"]) + [
                    "--", "--idle-exit", "1", "--stats-interval", "0", "-f", "tcp",
                ]
            let denied = try Harness.run("/usr/bin/env", ["LD_PRELOAD=\(library)", Harness.binary] + arguments)
            #expect(denied.status == 0, "\(denied.stderr.suffix(2000))")
            #expect(denied.balanced)
            #expect((denied.accounting["filtered"] ?? 0) > 0 && (denied.accounting["delivered"] ?? 0) > 0)
            let line = denied.stderr.split(separator: "\n").first { $0.contains("capture filter: 'tcp'") } ?? ""
            #expect(line.contains("warning"), "\(line)")
            #expect(line.contains("run by the eBPF interpreter: the JIT cannot make its code executable"), "\(line)")
            #expect(line.contains("MemoryDenyWriteExecute=yes"), "\(line)")
            let allowed = try Harness.run(Harness.binary, arguments)
            #expect(allowed.stderr.contains("JIT-compiled to"), "\(allowed.stderr.suffix(2000))")
            #expect(allowed.accounting["filtered"] == denied.accounting["filtered"])
        }
    }
}
