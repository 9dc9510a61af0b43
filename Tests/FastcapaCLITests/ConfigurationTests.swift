import FastcapaCapture
import FastcapaKafka
import FastcapaTestSupport
import Foundation
import Testing

@testable import FastcapaCLI

@Suite struct ConfigurationTests {
    static func file(_ text: String) throws -> String {
        let path = TestFiles.temporaryDirectory().appendingPathComponent("fastcapa.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `ring-full` given anywhere is kept as given; unset, the pipeline may
    /// wait for a replay of files (so the configuration says whether it was given).
    @Test func ringFullRemembersWhetherItWasGiven() throws {
        let unset = try CaptureOptions.parse([]).resolve().settings
        #expect(unset.ringFull == .drop && !unset.ringFullGiven)
        let flag = try CaptureOptions.parse(["--ring-full", "drop"]).resolve().settings
        #expect(flag.ringFull == .drop && flag.ringFullGiven)
        let file = try CaptureOptions.parse(["--config", try Self.file("ring-full: wait\n")]).resolve().settings
        #expect(file.ringFull == .wait && file.ringFullGiven)
    }

    @Test func flagsWinOverTheFileWhichWinsOverDefaults() throws {
        let path = try Self.file(
            """
            eal: [--no-huge, -m, "512"]
            rx-burst: 64
            ring-size: 4096
            topic: from-file
            kafka:
              linger.ms: 7
              bootstrap.servers: file:9092
            kafka-topic:
              message.timeout.ms: 1000
            """
        )
        let resolved = try CaptureOptions.parse(["--config", path, "-b", "128", "-X", "linger.ms=9"]).resolve()
        #expect(resolved.settings.rxBurst == 128)  // flag
        #expect(resolved.settings.ringSize == 4096)  // file
        #expect(resolved.settings.txBurst == 256)  // default
        #expect(resolved.settings.topic == "from-file")
        #expect(resolved.eal == ["--no-huge", "-m", "512"])
        #expect(resolved.kafka.globalValue("linger.ms") == "9")
        #expect(resolved.kafka.globalValue("bootstrap.servers") == "file:9092")
        #expect(resolved.kafka.topic.map(\.key) == ["message.timeout.ms"])
        // EAL arguments on the command line replace the file's.
        let withEal = try CaptureOptions.parse(["--config", path]).resolve(eal: ["--vdev=net_null0"])
        #expect(withEal.eal == ["--vdev=net_null0"])
    }

    /// `require-broker` (a production unit's guard against the embedded broker), from the file or the command
    /// line, where `--no-require-broker` wins over the file.
    @Test func requireBrokerIsABooleanTheCommandLineCanTurnOff() throws {
        #expect(try CaptureOptions.parse([]).resolve().requireBroker == false)
        let path = try Self.file("require-broker: true\n")
        let required = try CaptureOptions.parse(["--config", path]).resolve()
        #expect(required.requireBroker && required.missingRequiredBroker?.contains("-X bootstrap.servers") == true)
        #expect(try CaptureOptions.parse(["--config", path, "--no-require-broker"]).resolve().requireBroker == false)
        let configured = try CaptureOptions.parse(["--require-broker", "-X", "bootstrap.servers=k:9092"]).resolve()
        #expect(configured.requireBroker && configured.missingRequiredBroker == nil)
        let error = #expect(throws: SettingError.self) {
            try CaptureOptions.parse(["--config", try Self.file("require-broker: yes\n")]).resolve()
        }
        #expect(
            error?.description.contains("require-broker: 'yes' is not true or false") == true,
            "\(String(describing: error))"
        )
    }

    @Test func printedConfigurationLoadsBackAndHidesSecrets() throws {
        let options = try CaptureOptions.parse([
            "-q", "2", "--ring-full", "wait", "-X", "sasl.password=hunter2", "-X", "ssl.key.password=k3y",
            "-X", "sasl.username=alice", "-X", "topic.acks=all",
        ])
        let resolved = try options.resolve()
        let printed = resolved.yaml()
        #expect(!printed.contains("hunter2") && !printed.contains("k3y"))
        #expect(printed.contains("\"sasl.password\": \"[redacted]\""))
        #expect(printed.contains("alice"))
        let unredacted = try CaptureOptions.parse(["--config", try Self.file(resolved.yaml(redactingSecrets: false))])
            .resolve()
        #expect(unredacted.settings == resolved.settings)
        #expect(unredacted.kafka.globalValue("sasl.password") == "hunter2")
        #expect(unredacted.kafka.topic.last?.value == "all")
    }

    @Test func everySettingHasAFlagAndAConfigKey() throws {
        let help = CaptureOptions.helpMessage()
        for setting in Setting.all {
            // A boolean setting (off by default) is a flag: --KEY turns it on, --no-KEY off.
            let boolean = setting.defaultValue == "false"
            let value = boolean ? "true" : setting.defaultValue.isEmpty ? "some-file" : setting.defaultValue
            let options = try CaptureOptions.parse(boolean ? ["--\(setting.key)"] : ["--\(setting.key)", value])
            #expect(options.givenOnCommandLine == [setting.key: value], "--\(setting.key) reaches the setting")
            #expect(help.contains("--\(setting.key)"), "--help lists --\(setting.key)")
        }
        #expect(try CaptureOptions.parse([]).givenOnCommandLine.isEmpty)
    }

    @Test(arguments: [
        ("rx-burst: [1, 2\n", "line"),
        ("rx-burst: 32\nrx-brust: 64\n", "Did you mean 'rx-burst'"),
        ("- just\n- a list\n", "mapping"),
        ("rx-burst: lots\n", "whole number"),
        ("ring-size: 1000\n", "power of two"),
        ("eal: --no-huge\n", "eal must be a list"),
        ("kafka: 5\n", "mapping of librdkafka properties"),
        ("kafka:\n  no.such.property: 1\n", "no.such.property"),
        ("topic:\n  nested: true\n", "single value"),
    ])
    func badConfigFilesSayWhereAndWhat(_ text: String, _ mention: String) throws {
        let path = try Self.file(text)
        do {
            _ = try CaptureOptions.parse(["--config", path]).resolve()
            Issue.record("accepted: \(text)")
        } catch {
            #expect("\(error)".contains(mention), "\(error)")
            #expect("\(error)".contains(path) || "\(error)".contains("no.such.property"), "names the file: \(error)")
        }
    }

    @Test func theFilterComesFromAFlagTheConfigOrAFileWithComments() throws {
        let filterFile = TestFiles.temporaryDirectory().appendingPathComponent("filter.txt").path
        try "# web\ntcp port 443   # TLS\n\n  or udp port 53\n".write(
            toFile: filterFile,
            atomically: true,
            encoding: .utf8
        )
        let fromFile = try CaptureOptions.parse(["--filter-file", filterFile]).resolve()
        #expect(fromFile.settings.filter == "tcp port 443 or udp port 53")
        #expect(fromFile.settings.filterExpression == "tcp port 443 or udp port 53")
        let fromConfig = try CaptureOptions.parse([
            "--config", try Self.file("filter: vlan\nfilter-engine: interpreter\n"),
        ])
        .resolve()
        #expect(fromConfig.settings.filter == "vlan" && fromConfig.settings.filterEngine == .interpreter)
        let flagWins = try CaptureOptions.parse(["--config", try Self.file("filter: vlan\n"), "-f", "ip6"]).resolve()
        #expect(flagWins.settings.filter == "ip6")
        #expect(try CaptureOptions.parse([]).resolve().settings.filterExpression == nil)
        #expect(try CaptureOptions.parse(["-f", "  "]).resolve().settings.filterExpression == nil, "blank: no filter")
        // --print-config gives back the filter, and a file's path without its text (no conflict when read again).
        let printed = try CaptureOptions.parse(["--config", try Self.file(fromFile.yaml())]).resolve()
        #expect(printed.settings.filter == fromFile.settings.filter)
        #expect(throws: SettingError.self) {
            try CaptureOptions.parse(["-f", "tcp", "--filter-file", filterFile]).resolve()
        }
        #expect(Setting.liveKeys.isSuperset(of: ["filter", "filter-file", "filter-engine"]))
    }

    @Test func lineNumbersPointAtTheOffendingLine() throws {
        let path = try Self.file("# comment\nrx-burst: 32\n\nring-size: 1000\n")
        #expect(throws: SettingError.self) { try CaptureOptions.parse(["--config", path]).resolve() }
        do { _ = try CaptureOptions.parse(["--config", path]).resolve() } catch {
            #expect("\(error)".contains("\(path):4"), "\(error)")
        }
    }
}
