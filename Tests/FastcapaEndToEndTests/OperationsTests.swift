import FastcapaTestSupport
import Foundation
import Glibc
import Testing

extension EndToEnd {
    /// What operators run around the capture: `--version`, `fastcapa check`,
    /// logs under systemd, DPDK's log lines, completions and the man page.
    @Suite struct Operations {
        static let sample = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
        static let ealPcap = Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(sample)"])

        /// Runs the binary with standard error on a pipe; `journal` sets
        /// `$JOURNAL_STREAM` to that pipe's device and inode, as systemd does.
        static func run(_ arguments: [String], journal: Bool) throws -> (status: Int32, stdout: String, stderr: String)
        {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Harness.binary)
            process.arguments = arguments
            let out = Pipe()
            let err = Pipe()
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            var environment = ProcessInfo.processInfo.environment
            environment["JOURNAL_STREAM"] = nil
            if journal {
                var status = stat()
                fstat(err.fileHandleForWriting.fileDescriptor, &status)
                environment["JOURNAL_STREAM"] = "\(status.st_dev):\(status.st_ino)"
            }
            process.environment = environment
            try process.run()
            // Read both to the end before waiting: a full pipe would block the child.
            let group = DispatchGroup()
            nonisolated(unsafe) var outData = Data()
            nonisolated(unsafe) var errData = Data()
            DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
            DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
            process.waitUntilExit()
            group.wait()
            return (
                process.terminationStatus, String(decoding: outData, as: UTF8.self),
                String(decoding: errData, as: UTF8.self)
            )
        }

        @Test func versionIsPrintedAndLoggedAtStart() throws {
            for arguments in [["--version"], ["--", "--version"]] {
                let result = try Harness.run(Harness.binary, arguments)
                #expect(result.status == 0)
                #expect(result.stdout.hasPrefix("fastcapa ") && result.stdout.contains("(DPDK "), "\(result.stdout)")
                #expect(result.stdout.contains("librdkafka 2."))
            }
        }

        /// Under systemd every line of standard error starts with its syslog
        /// priority, fastcapa's, librdkafka's and DPDK's alike; the version is
        /// the first thing logged.
        @Test func underTheJournalEveryLineCarriesItsPriority() throws {
            let version = try Harness.run(Harness.binary, ["--version"]).stdout.trimmingCharacters(in: .newlines)
            // Without --log-level=lib.eal:warning, so that EAL's own info lines appear.
            let eal = Self.ealPcap.filter { !$0.hasPrefix("--log-level") }
            let journal = try Self.run(eal + ["--", "--idle-exit", "1", "--stats-interval", "0"], journal: true)
            #expect(journal.status == 0, "\(journal.stderr)")
            let lines = journal.stderr.split(separator: "\n")
            #expect(!lines.isEmpty)
            for line in lines {
                #expect(line.wholeMatch(of: /<[0-7]>.*/) != nil, "no priority: \(line)")
            }
            #expect(lines.contains { $0.hasPrefix("<6>info fastcapa:") && $0.contains("\(version) starting") })
            #expect(lines.contains { $0.hasPrefix("<6>info dpdk:") && $0.contains("EAL: ") }, "DPDK's lines too")
            // An error is <3> and a start failure <2>, so `journalctl -p err` shows both.
            let failing = try Self.run(
                Harness.eal(lcores: 3, vdevs: ["net_nosuch0"]) + ["--", "--stats-interval", "0"],
                journal: true
            )
            #expect(failing.status == 1)
            #expect(failing.stderr.contains("<3>error dpdk:"), "\(failing.stderr)")
            #expect(failing.stderr.contains("<2>critical fastcapa:") && failing.stderr.contains("DPDK could not start"))

            // Not under the journal (or stderr redirected since): no prefix.
            let plain = try Self.run(Harness.eal(lcores: 3, vdevs: ["net_nosuch0"]) + ["--"], journal: false)
            #expect(!plain.stderr.contains("<3>") && plain.stderr.contains("error dpdk:"), "\(plain.stderr)")
        }

        /// `--log-format json`: every line of standard error (fastcapa's, librdkafka's, DPDK's) is one
        /// JSON object with the text form's fields, under the journal too (the shipper reads it there).
        @Test func jsonLogsAreOneObjectALineFromEverySource() throws {
            let eal = Self.ealPcap.filter { !$0.hasPrefix("--log-level") }
            let broker = try Harness.Broker()
            let result = try Self.run(
                eal + [
                    "--", "--idle-exit", "1", "--stats-interval", "0", "--log-format", "json", "-X",
                    // A consumer property: librdkafka warns that a producer ignores it (its CONFWARN line).
                    "bootstrap.servers=\(broker.address)", "-X", "fetch.wait.max.ms=100",
                ],
                journal: true
            )
            #expect(result.status == 0, "\(result.stderr)")
            var labels: Set<String> = []
            for line in result.stderr.split(separator: "\n") {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                let keys = Set(object?.keys.map { $0 } ?? [])
                #expect(keys == ["time", "level", "priority", "label", "source", "message", "metadata"], "\(line)")
                if let label = object?["label"] as? String { labels.insert(label) }
            }
            #expect(labels == ["fastcapa", "dpdk", "librdkafka"], "\(labels)")
            #expect(result.stderr.contains("\"message\":\"fastcapa "), "the start line: \(result.stderr)")
        }

        /// The service runs the installed config and nothing else, so `fastcapa check --config`
        /// on that file answers as the service does: with no brokers, check fails where the service exits 64,
        /// with the same sentence; a systemd credential that the service reads from $CREDENTIALS_DIRECTORY,
        /// check reads from --credentials-directory, and its refusal without one names that option.
        @Test func checkAndTheServiceAgreeOnTheInstalledConfig() throws {
            let installed = try String(
                contentsOf: TestFiles.packageRoot.appendingPathComponent("Configs/nic.yaml"),
                encoding: .utf8
            )
            // The operator has not given brokers yet: the file as shipped, less its example kafka: map.
            let withoutBrokers = try #require(installed.components(separatedBy: "\nkafka:\n").first)
            let directory = TestFiles.temporaryDirectory()
            let config = directory.appendingPathComponent("fastcapa.yaml")
            try Data(withoutBrokers.utf8).write(to: config)
            let eal = Harness.eal(lcores: 5, vdevs: ["net_null0"])
            let refusal = "no Kafka broker is configured and require-broker is set"
            let check = try Harness.run(Harness.binary, ["check"] + eal + ["--", "--config", config.path])
            #expect(check.status == 1 && check.stdout.contains("check: Kafka: FAILED: \(refusal)"), "\(check.stdout)")
            let service = try Harness.run(Harness.binary, eal + ["--", "--config", config.path])
            #expect(service.status == 64 && service.stderr.contains(refusal), "\(service.stderr)")

            let broker = try Harness.Broker()
            let credentials = directory.appendingPathComponent("credentials")
            try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
            try Data("s3cret\n".utf8).write(to: credentials.appendingPathComponent("kafka-password"))
            try Data(
                (withoutBrokers
                    + "\nkafka:\n  bootstrap.servers: \(broker.address)\n  sasl.password: \"@kafka-password\"\n").utf8
            ).write(to: config)
            let fromShell = try Harness.run(Harness.binary, ["check"] + eal + ["--", "--config", config.path])
            #expect(fromShell.status == 64, "\(fromShell.stdout)\(fromShell.stderr)")
            #expect(fromShell.stderr.contains("--credentials-directory /etc/fastcapa"), "\(fromShell.stderr)")
            let withFolder = try Harness.run(
                Harness.binary,
                ["check"] + eal + ["--", "--config", config.path, "--credentials-directory", credentials.path]
            )
            #expect(withFolder.stdout.contains("check: configuration: ok"), "\(withFolder.stdout)")
            #expect(withFolder.stdout.contains("check: Kafka: ok: 1 broker"), "\(withFolder.stdout)")
            // What the service resolves with systemd's variable is what the shell resolves with the option.
            let asService = try Harness.run(
                "/usr/bin/env",
                [
                    "CREDENTIALS_DIRECTORY=\(credentials.path)", Harness.binary, "--config", config.path,
                    "--print-config",
                ]
            )
            let asShell = try Harness.run(
                Harness.binary,
                ["--config", config.path, "--credentials-directory", credentials.path, "--print-config"]
            )
            #expect(asService.status == 0 && asService.stdout == asShell.stdout, "\(asService.stderr)")
        }

        /// DPDK's lines go through the same logger: one --log-level filters them.
        @Test func oneLogLevelCoversDpdk() throws {
            let eal = Harness.eal(lcores: 3, vdevs: ["net_nosuch0"]).filter { !$0.hasPrefix("--log-level") }
            let info = try Self.run(eal + ["--", "--log-level", "info"], journal: false)
            #expect(info.stderr.contains("info dpdk:") && info.stderr.contains("EAL: Detected"), "\(info.stderr)")
            let errors = try Self.run(eal + ["--", "--log-level", "error"], journal: false)
            #expect(!errors.stderr.contains("EAL: Detected"), "\(errors.stderr)")
            #expect(errors.stderr.contains("error dpdk:"), "errors still shown: \(errors.stderr)")
        }

        /// A Kafka file with a group Fastcapa's GKeyFile would have ignored runs,
        /// with a warning that names the group and its line.
        @Test func unknownIniGroupsAreSkippedWithAWarning() throws {
            let broker = try Harness.Broker()
            let ini = TestFiles.temporaryDirectory().appendingPathComponent("kafka.ini").path
            try "[kafka-global]\nbootstrap.servers = \(broker.address)\n\n[metron]\nsomething = else\n".write(
                toFile: ini,
                atomically: true,
                encoding: .utf8
            )
            let result = try Harness.probe(
                eal: Self.ealPcap,
                ["-c", ini, "--ring-full", "wait", "--idle-exit", "1", "--stats-interval", "0"]
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("\(ini):4: group [metron]"), "\(result.stderr)")
            #expect(result.accounting["delivered"] == 236)
        }

        /// `check` with everything right: exit 0, one line per check, nothing
        /// left behind, and a probe running with the same --file-prefix is not
        /// disturbed.
        @Test func checkPassesAConfigurationThatWorks() throws {
            let broker = try Harness.Broker(partitions: 2)
            let prefix = "fastcapa-check-test-\(getpid())"
            let probe = try Harness.Child(
                Harness.binary,
                Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(Self.sample),infinite_rx=1"])
                    + [
                        "--file-prefix=\(prefix)", "--", "--ring-full", "wait", "--stats-interval", "0",
                        "-X", "bootstrap.servers=\(broker.address)",
                    ]
            )
            usleep(1_500_000)
            let result = try Harness.run(
                Harness.binary,
                ["check"] + Self.ealPcap + [
                    "--file-prefix=\(prefix)", "--", "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            for text in [
                "check: configuration: ok", "check: EAL: ok: 3 lcores", "check: port 0: ok: net_pcap0 (net_pcap)",
                "1 of 1 receive queues", "check: Kafka: ok: 1 broker (\(broker.address))",
                "topic 'pcap' has 2 partitions", "check: ready",
                // The host's lines: no hugepages or PCI devices asked for; the lcores' CPUs isolated or
                // not (a warning on a host that isolates none), never a failure.
                "check: hugepages: ok: not used (--no-huge)", "check: PCI devices: ok: none (--no-pci)",
                "check: lcores: ",
            ] {
                #expect(result.stdout.contains(text), "'\(text)' in \(result.stdout)")
            }
            #expect(!result.stdout.contains("FAILED"), "\(result.stdout)")
            #expect(result.runtimeFolderRemoved)
            #expect(probe.process.isRunning, "the probe with the same --file-prefix still runs")
            probe.signal(SIGTERM)
            let captured = probe.wait(timeout: 60)
            #expect(
                captured.status == 0 && captured.balanced,
                "the running probe was not disturbed: \(captured.stderr)"
            )
            #expect((captured.accounting["delivered"] ?? 0) > 0)
            try? FileManager.default.removeItem(atPath: "/var/run/dpdk/\(prefix)")
        }

        /// `fastcapa check`'s cases: the same form as BadInput's, run as `fastcapa check EAL -- APP`.
        static let checkCases: [BadInput.Case] = [
            BadInput.Case(
                name: "no broker: the embedded one would be used",
                eal: ealPcap,
                application: [],
                status: 0,
                mentions: ["check: Kafka: ok: no broker configured: the probe would start the embedded broker"]
            ),
            BadInput.Case(
                name: "no broker, but one is required",
                eal: ealPcap,
                application: ["--require-broker"],
                status: 1,
                mentions: ["check: Kafka: FAILED: no Kafka broker is configured and require-broker is set"]
            ),
            BadInput.Case(
                name: "a port that does not exist",
                eal: ealPcap,
                application: ["-p", "0x3"],
                status: 1,
                mentions: [
                    "check: port 0: ok",
                    "check: port 1: FAILED: port 1 is selected by the port mask but does not exist",
                ]
            ),
            BadInput.Case(
                name: "more queues than the device has",
                eal: Harness.eal(lcores: 5, vdevs: ["net_pcap0,rx_pcap=\(sample)"]),
                application: ["-q", "2"],
                status: 1,
                mentions: ["check: port 0: FAILED", "at most 1 receive queue", "rx-queues"]
            ),
            BadInput.Case(
                name: "too few lcores",
                eal: Harness.eal(lcores: 2, vdevs: ["net_null0"]),
                application: [],
                status: 1,
                mentions: [
                    "check: EAL: FAILED: 2 worker lcores are needed", "Give EAL 3 lcores", "(Deployment.md, \"Cores\")",
                ]
            ),
            BadInput.Case(
                name: "EAL refuses its arguments",
                eal: ealPcap + ["--no-such-eal-option"],
                application: [],
                status: 1,
                mentions: ["check: EAL: FAILED: DPDK could not start", "--no-such-eal-option", "check: Kafka: ok"]
            ),
            BadInput.Case(
                name: "no broker answers",
                eal: ealPcap,
                application: ["-X", "bootstrap.servers=127.0.0.1:1", "--timeout", "2"],
                status: 1,
                mentions: ["check: Kafka: FAILED: 127.0.0.1:1: no broker answered", "Check bootstrap.servers"]
            ),
            BadInput.Case(
                name: "a statistics file that cannot be written",
                eal: ealPcap,
                application: ["-s", "/nonexistent/folder/stats.json"],
                status: 1,
                mentions: ["check: stats-file: FAILED", "/nonexistent/folder", "not writable"]
            ),
            BadInput.Case(
                name: "a bad configuration is refused as the capture refuses it",
                eal: ealPcap,
                application: ["-x", "1000"],
                status: 64,
                mentions: ["ring size", "power of two"]
            ),
            BadInput.Case(
                name: "a bad timeout",
                eal: ealPcap,
                application: ["--timeout", "-1"],
                status: 64,
                mentions: ["timeout", "-1", "out of range"]
            ),
        ]

        @Test(arguments: checkCases)
        func checkExplainsWhatIsWrong(_ input: BadInput.Case) throws {
            let result = try Harness.run(
                Harness.binary,
                ["check"] + input.eal + ["--"] + input.application,
                timeout: 60
            )
            #expect(result.status == input.status, "\(result.stdout)\n\(result.stderr)")
            #expect(!result.signaled)
            for text in input.mentions {
                #expect(
                    (result.stdout + result.stderr).contains(text),
                    "'\(text)' in \(result.stdout)\n\(result.stderr)"
                )
            }
            #expect(result.runtimeFolderRemoved)
        }

        /// The embedded broker speaks neither TLS nor SASL (no Kafka with them
        /// can be installed here): a probe configured for them must be told
        /// clearly, as against a plaintext listener of a real cluster.
        @Test(arguments: [
            (["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN"], "SASL authentication failed"),
            (["-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512"], "the TLS handshake failed"),
            (["-X", "security.protocol=SSL"], "the TLS handshake failed"),
        ])
        func checkReportsTlsAndSaslFailures(_ security: [String], _ mention: String) throws {
            let broker = try Harness.Broker()
            let secret = TestFiles.temporaryDirectory().appendingPathComponent("password").path
            try "s3cr3t-from-a-file\n".write(toFile: secret, atomically: true, encoding: .utf8)
            let result = try Harness.run(
                Harness.binary,
                ["check"] + Self.ealPcap + [
                    "--", "-X", "bootstrap.servers=\(broker.address)", "--timeout", "5",
                    "-X", "sasl.username=fastcapa", "-X", "sasl.password=@\(secret)",
                ] + security,
                timeout: 60
            )
            #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
            #expect(result.stdout.contains("check: Kafka: FAILED: \(broker.address): \(mention)"), "\(result.stdout)")
            #expect(!(result.stdout + result.stderr).contains("s3cr3t"), "the secret never appears")
        }

        @Test(arguments: ["bash", "zsh", "fish"])
        func completionScriptsAreGenerated(_ shell: String) throws {
            let result = try Harness.run(Harness.binary, ["--generate-completion-script", shell])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("fastcapa") && result.stdout.contains("ring-size"))
        }

        /// bash completes the capture's options where the command is not named,
        /// as operators type it, and the tools' after their name.
        @Test func bashCompletesTheDefaultCommand() throws {
            let script = TestFiles.temporaryDirectory().appendingPathComponent("fastcapa.bash").path
            try Harness.run(Harness.binary, ["--generate-completion-script", "bash"]).stdout.write(
                toFile: script,
                atomically: true,
                encoding: .utf8
            )
            let cases: [(String, [String])] = [
                ("fastcapa ch", ["check"]),
                ("fastcapa --con", ["--config", "--control-cores"]),
                ("fastcapa -l 0-2 --vdev=net_null0 -- --ring-", ["--ring-size", "--ring-full"]),
                ("fastcapa -l 0-2 -- --partitioner ''", ["round-robin", "flow", "key"]),
                ("fastcapa check -l 0-2 -- --time", ["--timeout"]),
                ("fastcapa consume --fo", ["--follow", "--format"]),
            ]
            for (line, expected) in cases {
                let bash = """
                    source '\(script)'
                    COMP_WORDS=(\(line)); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                    COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
                    _fastcapa_default_command fastcapa "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
                    printf '%s\\n' "${COMPREPLY[@]}"
                    """
                let result = try Harness.run("/bin/bash", ["-c", bash])
                #expect(result.status == 0, "\(result.stderr)")
                let offered = Set(result.stdout.split(separator: "\n").map(String.init))
                #expect(Set(expected).isSubset(of: offered), "\(line): \(offered.sorted())")
            }
        }

        /// Documentation/fastcapa.1 is what swift-argument-parser's
        /// generate-manual produces from this binary (the date aside), and it
        /// documents every capture option.
        @Test(
            .enabled(
                if: manualGenerator != nil,
                "the man page generator is built by Scripts/manual (swift package plugin generate-manual)"
            )
        )
        func theManPageIsUpToDate() throws {
            let directory = TestFiles.temporaryDirectory()
            let result = try Harness.run(
                Self.manualGenerator!,
                [Harness.binary, "--output-directory", directory.path]
            )
            #expect(result.status == 0, "\(result.stderr)")
            func body(_ path: String) throws -> [Substring] {
                try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter {
                    !$0.hasPrefix(".Dd ")
                }
            }
            let fresh = try body(directory.appendingPathComponent("fastcapa.1").path)
            let committed = try body(TestFiles.packageRoot.appendingPathComponent("Documentation/fastcapa.1").path)
            #expect(fresh == committed, "Documentation/fastcapa.1 is out of date: run Scripts/manual")
        }

        @Test func theManPageDocumentsEveryOption() throws {
            let page = try String(
                contentsOf: TestFiles.packageRoot.appendingPathComponent("Documentation/fastcapa.1"),
                encoding: .utf8
            )
            // The options of the capture's OPTIONS section: "  -x, --ring-size <ring-size>", "  --config <config>".
            let help = try Harness.run(Harness.binary, ["--", "--help"]).stdout
            let options = help.split(separator: "\n").compactMap { line in
                line.firstMatch(of: /^ +(?:-[A-Za-z], )?--([a-z][a-z0-9-]+)/).map { String($0.1) }
            }
            #expect(options.count > 30)
            for option in options where option != "help" {
                #expect(
                    page.contains(" -\(option) ") || page.contains(" -\(option)\n"),
                    "the man page documents --\(option)"
                )
            }
            for command in ["check", "broker", "consume", "watermarks", "limit"] {
                #expect(page.contains("Em \(command)"), "the man page documents \(command)")
            }
            // The synopsis shows the capture's form, and the description every exit status.
            #expect(
                page.contains(".Op Ar \"EAL options\"\n.Ar --\n.Op Ar options...\n"),
                "fastcapa [EAL options] -- [options]"
            )
            for status in [0, 1, 2, 3, 64] {
                #expect(page.contains("\n\(status): "), "the man page explains exit status \(status)")
            }
        }

        /// generate-manual, built beside the binary by the plugin.
        static let manualGenerator: String? = {
            let directory = URL(fileURLWithPath: Harness.binary).deletingLastPathComponent()
            return ["generate-manual-tool", "generate-manual"].map { directory.appendingPathComponent($0).path }
                .first { FileManager.default.isExecutableFile(atPath: $0) }
        }()
    }
}
