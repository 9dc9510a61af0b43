import FastcapaCapture
import Testing

@testable import FastcapaCLI

@Suite struct SettingsTests {
    @Test func fastcapaDefaults() throws {
        let settings = try CaptureOptions.parse([]).resolve().settings
        #expect(settings.portMask == 0x01)
        #expect(settings.rxBurst == 32)
        #expect(settings.txBurst == 256)
        #expect(settings.rxDescriptors == 1024)
        #expect(settings.ringSize == 2048)
        #expect(settings.rxQueues == 1)
        #expect(settings.topic == "pcap")
        #expect(settings.txWorkersPerRing == 1)
        #expect(settings.ringFull == .drop)
        #expect(settings.partitioning == .roundRobin)
        #expect(settings.produceCall == .batch)
        #expect(settings.deliveryReports == .lcore)
        #expect(try CaptureOptions.parse([]).resolve().controlCores == .auto)
    }

    @Test func controlCoresPrintBackInTheConfiguration() throws {
        let resolved = try CaptureOptions.parse(["--control-cores", "0-1"]).resolve()
        #expect(resolved.controlCores == .cpus([0, 1]))
        #expect(resolved.yaml().contains("control-cores: \"0-1\""))
    }

    @Test func fastcapaShortFlags() throws {
        let options = try CaptureOptions.parse([
            "-p", "0x3", "-b", "64", "-w", "512", "-d", "2048", "-x", "4096", "-q", "2", "-t", "packets",
        ])
        let settings = try options.resolve().settings
        #expect(settings.ports == [0, 1])
        #expect(settings.rxBurst == 64 && settings.txBurst == 512 && settings.rxDescriptors == 2048)
        #expect(settings.ringSize == 4096 && settings.rxQueues == 2 && settings.topic == "packets")
        #expect(settings.workerLcoresNeeded == 8)
    }

    @Test(arguments: ["1", "0x1", "0X1", "ff", "0xFFFFFFFFFFFFFFFF"])
    func portMasksAreHex(_ text: String) throws {
        #expect(try Setting.parsePortMask(text) != 0)
    }

    @Test(arguments: ["", "0x", "0x0", "zz", "-1", "0x1FFFFFFFFFFFFFFFF", "1 2"])
    func badPortMasksAreRejected(_ text: String) {
        #expect(throws: SettingError.self) { try Setting.parsePortMask(text) }
    }

    /// Every setting the data path refuses names a config key the command line
    /// knows, so the message can name its flags.
    @Test func refusedSettingsAreNamedWithTheirFlags() throws {
        for arguments in [
            ["-b", "0"], ["-x", "3"], ["-q", "0"], ["--snap-length", "0"], ["--idle-sleep-max-us=-1"],
        ] {
            #expect {
                try CaptureOptions.parse(arguments).resolve()
            } throws: { error in
                let message = "\(error)"
                let flag = arguments[0].split(separator: "=")[0]
                return message.contains(flag) && message.contains("Use ")
            }
        }
    }

    @Test func dashXSplitsTopicProperties() throws {
        let options = try CaptureOptions.parse(["-X", "linger.ms=5", "-X", "topic.acks=all", "-X", "client.rack=a=b"])
        let properties = try options.resolve().kafka
        #expect(properties.globalValue("linger.ms") == "5")
        #expect(properties.globalValue("client.rack") == "a=b")
        #expect(properties.topic.map(\.key) == ["acks"])
        #expect(!properties.hasBrokers)
    }

    @Test func argumentsSplitAtTheFirstDoubleDash() {
        let split = FastcapaMain.splitArguments(["--vdev=x", "-l", "0-2", "--", "-p", "0x1", "--", "y"])
        #expect(split.eal == ["--vdev=x", "-l", "0-2"])
        #expect(split.application == ["-p", "0x1", "--", "y"])
        #expect(FastcapaMain.splitArguments(["-p", "1"]).eal.isEmpty)
    }

    /// Each setting's `--help` line is its declaration's text, and the default it names is the one
    /// a run without options uses (where the help words a default found at run time, the value
    /// that stands for it).
    @Test func everySettingsHelpNamesTheDefaultTheRunUses() throws {
        // One entry an option: its first line and the lines its help wraps onto, spaces folded.
        var entries: [String] = []
        for line in CaptureCommand.helpMessage(columns: 1000).split(separator: "\n") {
            if line.hasPrefix("  -") || entries.isEmpty {
                entries.append(String(line))
            } else {
                entries[entries.count - 1] += " " + line
            }
        }
        let lines = entries.map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        let run = try CaptureOptions.parse([]).resolve(environment: [:])
        let worded: [String: String?] = [
            "headers": "", "probe-id": "", "filter": "", "metrics-address": nil, "require-broker": "false",
            "ring-full": "drop",
        ]
        for setting in Setting.all {
            let line = lines.first { $0.contains("--\(setting.key) ") || $0.contains("--\(setting.key)/") }
            #expect(line?.hasSuffix(" \(setting.helpText)") == true, "--\(setting.key): \(line ?? "not in --help")")
            if let expected = worded[setting.key] {
                #expect(setting.shownDefault != nil && setting.read(run) == expected, "\(setting.key)")
            } else if let shown = setting.shownDefault {
                #expect(shown == setting.read(run), "--\(setting.key)'s help says \(shown)")
                #expect(line?.contains("(default: \(setting.read(run) ?? ""))") == true, "\(setting.key)")
            } else {
                #expect((setting.read(run) ?? "").isEmpty, "\(setting.key) has a default --help does not name")
            }
        }
    }

    /// Each setting's key is its option's long name, its flag the option's short name, and the
    /// option is where the table reads it from.
    @Test func everySettingIsTheOptionOfItsKey() throws {
        for setting in Setting.all where setting.key != "require-broker" {
            let value = setting.defaultValue.isEmpty ? "x" : setting.defaultValue
            for name in ["--\(setting.key)", setting.fastcapaFlag ?? setting.shortFlag].compactMap({ $0 }) {
                let options = try CaptureOptions.parse([name, value])
                #expect(options.givenOnCommandLine == [setting.key: value], "\(name)")
            }
        }
        #expect(try CaptureOptions.parse(["--require-broker"]).givenOnCommandLine == ["require-broker": "true"])
        #expect(try CaptureOptions.parse(["--no-require-broker"]).givenOnCommandLine == ["require-broker": "false"])
        #expect(try CaptureOptions.parse([]).givenOnCommandLine.isEmpty)
    }

    /// `consume`'s `-X topic.KEY=value` goes to the topic configuration (a consumer's default
    /// topic configuration), every other key to the global one, as the capture splits them.
    @Test func consumeSendsTopicPropertiesToTheTopicConfiguration() throws {
        let command = try ConsumeCommand.parse([
            "-b", "localhost:9092", "-X", "topic.auto.offset.reset=earliest", "-X", "fetch.min.bytes=2",
        ])
        let kafka = try command.kafkaOptions.resolve(environment: [:]).kafka
        #expect(kafka.topic.map(\.key) == ["auto.offset.reset"])
        #expect(kafka.topic.first?.value == "earliest")
        #expect(kafka.globalValue("fetch.min.bytes") == "2")
        #expect(kafka.globalValue("bootstrap.servers") == "localhost:9092")
        #expect(!kafka.global.contains { $0.key.hasPrefix("topic.") })
    }

    /// `consume`'s snap length defaults to the capture's.
    @Test func consumeSnapLengthIsTheCapturesDefault() throws {
        #expect(try ConsumeCommand.parse([]).snapLength == CaptureSettings().snapLength)
    }
}
