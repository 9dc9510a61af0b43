import ArgumentParser
import FastcapaCapture
import FastcapaKafka
import FastcapaTestSupport
import Foundation
import Testing

@testable import FastcapaCLI

/// The command line around the capture: where arguments go, the version,
/// negative numbers, the partitioner's names, INI groups, completions.
@Suite struct CommandLineTests {
    @Test func argumentsGoWhereTheyBelong() {
        #expect(FastcapaMain.route([]) == .capture([]))
        let fastcapa = ["-l", "0-2", "--vdev=net_null0", "--", "-p", "0x1", "-q", "1"]
        #expect(FastcapaMain.route(fastcapa) == .capture(fastcapa), "Fastcapa's command line, unchanged")
        #expect(FastcapaMain.route(["--config", "f.yaml"]) == .capture(["--config", "f.yaml"]))
        #expect(FastcapaMain.route(["capture", "--", "-q", "2"]) == .capture(["--", "-q", "2"]))
        #expect(
            FastcapaMain.route(["check", "-l", "0-2", "--", "-c", "k.ini"])
                == .check(["-l", "0-2", "--", "-c", "k.ini"])
        )
        for root in [
            ["--version"], ["--generate-completion-script", "bash"], ["--generate-completion-script=zsh"],
            ["--experimental-dump-help"], ["help"], ["consume", "-b", "x:1"], ["broker"], ["watermarks", "-b", "x"],
            ["limit", "-b", "x"],
        ] {
            #expect(FastcapaMain.route(root) == .root, "\(root)")
        }
    }

    @Test func theVersionComesFromOnePlace() {
        #expect(FastcapaVersion.description.hasPrefix("fastcapa \(FastcapaVersion.number) (DPDK "))
        #expect(FastcapaVersion.description.contains("librdkafka \(LibrdkafkaBuild.version)"))
        #expect(RootCommand.configuration.version == FastcapaVersion.description)
    }

    /// Every numeric option given a negative number as a separate argument gets
    /// the message 0 gets when 0 is out of its range (never "Missing value").
    @Test func negativeNumbersAreOutOfRangeNotMissing() throws {
        func message(_ arguments: [String]) -> String? {
            do { _ = try CaptureOptions.parse(arguments).resolve() } catch {
                #expect(error is SettingError, "\(arguments): \(error)")
                return "\(error)"
            }
            return nil
        }
        let numeric = Setting.all.filter { Int($0.defaultValue) != nil }.map(\.key)
        #expect(numeric.count >= 20)
        for key in numeric {
            let negative = try #require(message(["--\(key)", "-5"]), "--\(key) -5 was accepted")
            if let zero = message(["--\(key)", "0"]) {
                #expect(negative == zero.replacingOccurrences(of: ": 0 is", with: ": -5 is"), "\(negative) | \(zero)")
            } else {
                #expect(
                    negative.contains("-5") && (negative.contains("negative") || negative.contains("out of range")),
                    "\(negative)"
                )
            }
        }
        #expect(message(["--snap-length", "-5"])?.contains("snap length (--snap-length): -5 is out of range") == true)
        #expect(message(["-x", "-1"])?.contains("ring size") == true)
        #expect(message(["-p", "-1"])?.contains("hex") == true)
    }

    @Test func roundRobinKeepsDefaultAsAnotherName() throws {
        #expect(
            try CaptureOptions.parse(["--partitioner", "round-robin"]).resolve().settings.partitioning == .roundRobin
        )
        let alias = try CaptureOptions.parse(["--partitioner", "default"]).resolve()
        #expect(alias.settings.partitioning == .roundRobin)
        #expect(alias.yaml().contains("partitioner: \"round-robin\""))
        #expect(CaptureOptions.helpMessage().contains("round-robin"))
        do {
            _ = try CaptureOptions.parse(["--partitioner", "random"]).resolve()
        } catch {
            #expect("\(error)".contains("round-robin, default, flow, key"))
            #expect("\(error)".contains("'default' is another name for round-robin"))
        }
    }

    /// Fastcapa read its INI file with GKeyFile, which ignores groups it is not
    /// asked about: accepted, with a warning naming the group and its line.
    @Test func unknownIniGroupsWarn() throws {
        let path = TestFiles.temporaryDirectory().appendingPathComponent("kafka.ini").path
        try "[kafka-global]\nbootstrap.servers = k:9092\n\n[pycapa]\nlinger.ms = 99\n".write(
            toFile: path,
            atomically: true,
            encoding: .utf8
        )
        let resolved = try CaptureOptions.parse(["-c", path]).resolve()
        #expect(resolved.kafka.globalValue("linger.ms") == nil)
        #expect(resolved.warnings.count == 1)
        #expect(resolved.warnings.first?.contains("\(path):4: group [pycapa]") == true, "\(resolved.warnings)")
    }

    @Test(arguments: [CompletionShell.bash, .zsh, .fish])
    func completionsKnowTheCommandsAndTheirOptions(_ shell: CompletionShell) {
        let script = RootCommand.completionScript(for: shell)
        for word in [
            "capture", "check", "consume", "broker", "ring-size", "partitioner", "round-robin", "timeout",
        ] {
            #expect(script.contains(word), "\(shell) completions mention \(word)")
        }
    }

    /// README's option table and `fastcapa -- --help` list the same options, both ways: each option the help
    /// lists (its short and long name) has a row, and each row names one option the help lists. The help is the
    /// text the binary prints, one option a line.
    @Test func theReadmeTableListsEveryOptionOfTheHelp() throws {
        let lines = CaptureCommand.helpMessage(columns: 1000).split(separator: "\n")
        // "  -p, --port-mask <port-mask>  ...", "  -X <key=value>  ...", "  --require-broker/--no-require-broker  ..."
        let help: [Set<String>] = lines.drop { $0 != "OPTIONS:" }.compactMap { line in
            guard let match = line.firstMatch(of: /^  (-[A-Za-z])?(?:, )?(--[a-z][a-z0-9-]*)?/) else { return nil }
            let names = Set([match.1, match.2].compactMap { $0.map(String.init) })
            return names.isEmpty ? nil : names
        }
        #expect(help.count > 40)

        let readme = try String(contentsOf: TestFiles.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let text = readme.split(separator: "\n", omittingEmptySubsequences: false)
        let heading = try #require(text.firstIndex(of: "### Options (after `--`)"), "README has no option table")
        let table = text[heading...].drop { !$0.hasPrefix("|") }.prefix { $0.hasPrefix("|") }.dropFirst(2)
        // A row's names: `-p`, `--port-mask`, `-X key=value` in its first two columns.
        let rows: [Set<String>] = table.map { row in
            let columns = row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().prefix(2)
            return Set(
                columns.joined(separator: " ").matches(of: /`(--?[A-Za-z][A-Za-z0-9-]*)[` ]/).map { String($0.1) }
            )
        }
        #expect(rows.count > 40)

        for option in help {
            #expect(
                rows.contains { option.isSubset(of: $0) },
                "README's option table has no row for \(option.sorted())"
            )
        }
        for row in rows {
            #expect(
                !row.isEmpty && help.contains { row.isSubset(of: $0) },
                "README's option table has a row for what --help does not list: \(row.sorted())"
            )
        }
    }

    /// The test seams come from one place, in a test build, and never show in the help.
    @Test func theTestSeamsAreReadInOnePlaceAndHidden() throws {
        #expect(TestingHooks.compiledIn, "a debug build (the tests') reads the seams")
        #expect(!CaptureCommand.helpMessage().contains("testing"), "a seam is in --help")
        #expect(try CaptureOptions.parse([]).testingHooks == .none)
        #if FASTCAPA_TESTING_HOOKS
        #expect(try CaptureOptions.parse(["--testing-fault-signals"]).testingHooks.faultSignals)
        let hooks = TestingHooks(
            faultSignals: false,
            environment: [
                "FASTCAPA_TESTING_MISCOUNT": "delivery", "FASTCAPA_TESTING_FILTER_SWAP_DELAY_MS": "1500",
                "FASTCAPA_LEVER_SPLIT_WORKERS": "1",
            ]
        )
        #expect(hooks.miscountDelivery && hooks.splitWorkers && hooks.filterSwapDelayMs == 1500 && !hooks.faultSignals)
        #expect(TestingHooks(faultSignals: false, environment: ["FASTCAPA_TESTING_MISCOUNT": "other"]) == .none)
        #endif
    }

    @Test func theCheckTimeoutIsChecked() throws {
        #expect(try CheckArguments.parse(["--timeout", "5"]).timeoutSeconds() == 5)
        for bad in ["0", "-5", "601", "soon"] {
            #expect(throws: SettingError.self) { try CheckArguments.parse(["--timeout", bad]).timeoutSeconds() }
        }
    }

    /// `fastcapa check` runs EAL apart from a running probe: its own prefix,
    /// no telemetry socket, hugepage files unlinked (EAL refuses --in-memory
    /// with --no-huge).
    @Test func checkRunsEalApart() {
        #expect(
            CheckRun.checkEalArguments(["-l", "0-4", "--file-prefix", "fastcapa", "-a", "0000:3b:00.0"])
                == ["-l", "0-4", "-a", "0000:3b:00.0", "--in-memory", "--no-telemetry"]
        )
        #expect(
            CheckRun.checkEalArguments(["--no-huge", "--file-prefix=fastcapa", "-m", "512"])
                == ["--no-huge", "-m", "512", "--no-telemetry"]
        )
    }

    /// The configs shipped in Configs/ load: fastcapa.yaml lists every default,
    /// nic.yaml gives the service its fixed prefix, demo.yaml takes its lcores
    /// from Scripts/demo (or puts them all on CPU 0 alone).
    @Test func theShippedConfigsLoad() throws {
        func load(_ name: String, _ environment: [String: String] = [:]) throws -> ResolvedConfiguration {
            let path = TestFiles.packageRoot.appendingPathComponent("Configs/\(name)").path
            return try CaptureOptions.parse(["--config", path]).resolve(environment: environment)
        }
        let everything = try load("fastcapa.yaml")
        #expect(everything.settings == CaptureSettings())
        // Every key is there, set to its default or shown commented out.
        let text = try String(
            contentsOf: TestFiles.packageRoot.appendingPathComponent("Configs/fastcapa.yaml"),
            encoding: .utf8
        )
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for setting in Setting.all {
            #expect(
                lines.contains { $0.hasPrefix("\(setting.key):") || $0.hasPrefix("# \(setting.key):") },
                "Configs/fastcapa.yaml lacks '\(setting.key)'"
            )
        }
        // Its Kafka properties are librdkafka's defaults too (only shown, never changed).
        #expect(everything.kafka.topic.isEmpty, "\(everything.kafka.topic)")
        #expect(everything.kafka.global.map(\.key) == ["linger.ms"])
        for setting in Setting.all
        where !["kafka-config", "stats-file", "embedded-address-file", "counter-trace", "metrics-address"].contains(
            setting.key
        ) {
            #expect(
                setting.read(everything) == setting.read(ResolvedConfiguration()),
                "fastcapa.yaml's \(setting.key) is the default"
            )
        }
        let nic = try load("nic.yaml")
        #expect(nic.eal.contains("--file-prefix=fastcapa") && nic.eal.contains("--iova-mode=va"))
        #expect(nic.statsInterval == 60)
        #expect(try load("demo.yaml").eal.contains("--lcores=0@0,1@0,2@0"))
        #expect(try load("demo.yaml", ["FASTCAPA_LCORES": "0@2,1@3,2@4"]).eal.contains("--lcores=0@2,1@3,2@4"))
    }

    /// Every command's help, which the man page is generated from: each default
    /// said once (ArgumentParser adds its own to options with a default value),
    /// and ASCII only (the man page generator dropped the µ of "µs").
    @Test(arguments: [
        CaptureCommand.helpMessage(), CheckCommand.helpMessage(), BrokerCommand.helpMessage(),
        ConsumeCommand.helpMessage(), WatermarksCommand.helpMessage(), LimitCommand.helpMessage(),
    ])
    func helpSaysEachDefaultOnceInASCII(help: String) {
        let flat = help.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(!flat.contains(") (default:"), "a default twice: \(flat)")
        let foreign = help.unicodeScalars.filter { !$0.isASCII }
        #expect(foreign.isEmpty, "\(foreign)")
    }
}

/// `consume --format pcapng`: an interface's first message decides its
/// resolution (ns when it carries `time_ns`); later messages follow it.
@Suite struct PcapngResolutionTests {
    static func message(micros: UInt64, nanos: UInt64?, probe: String) -> KafkaTopicReader.Message {
        var headers: [(name: String, value: [UInt8])] = [("probe", Array(probe.utf8))]
        if let nanos {
            headers.append(("time_ns", withUnsafeBytes(of: MessageContract.timeNanosValue(nanos)) { Array($0) }))
        }
        return KafkaTopicReader.Message(
            partition: 0,
            offset: 0,
            key: MessageContract.keyBytes(micros: micros),
            value: [UInt8](repeating: 0xAB, count: 60),
            headers: headers
        )
    }

    /// Each interface's if_tsresol, and each packet's interface and timestamp.
    static func read(_ bytes: [UInt8]) -> (resolutions: [UInt8], packets: [(interface: Int, timestamp: UInt64)]) {
        func word(_ at: Int) -> Int {
            Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        }
        var resolutions: [UInt8] = []
        var packets: [(Int, UInt64)] = []
        var block = 0
        while block + 12 <= bytes.count {
            let length = word(block + 4)
            if word(block) == 1 {
                var option = block + 16
                while option + 4 <= block + length - 4, bytes[option] != 0 || bytes[option + 1] != 0 {
                    let size = Int(bytes[option + 2]) | Int(bytes[option + 3]) << 8
                    if bytes[option] == 9 { resolutions.append(bytes[option + 4]) }
                    option += 4 + (size + 3) / 4 * 4
                }
            } else if word(block) == 6 {
                packets.append((word(block + 8), UInt64(word(block + 12)) << 32 | UInt64(word(block + 16))))
            }
            block += length
        }
        return (resolutions, packets)
    }

    @Test func theFirstMessageOfAnInterfaceDecidesItsResolution() throws {
        let path = TestFiles.temporaryDirectory().appendingPathComponent("out.pcapng").path
        var sink = try PcapngSink(output: OutputFile(path: path), snapLength: 262_144)
        let base: UInt64 = 1_765_000_000_123_456
        let messages = [
            Self.message(micros: base, nanos: base * 1000 + 789, probe: "a"),  // a: ns
            Self.message(micros: base + 1, nanos: nil, probe: "a"),  // a without time_ns: key × 1000
            Self.message(micros: base + 2, nanos: nil, probe: "b"),  // b: µs
            Self.message(micros: base + 3, nanos: base * 1000 + 3_999, probe: "b"),  // b: the key
        ]
        for message in messages { try sink.write(ConsumedPacket(message, topic: "pcap")) }
        try sink.finish()
        let file = Self.read([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(file.resolutions == [9, 6])
        #expect(file.packets.map(\.interface) == [0, 0, 1, 1])
        #expect(file.packets.map(\.timestamp) == [base * 1000 + 789, (base + 1) * 1000, base + 2, base + 3])
    }
}
