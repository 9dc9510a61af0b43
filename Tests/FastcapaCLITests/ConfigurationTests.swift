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
        // The capture, and consume and watermarks reading the capture's file, refuse it alike.
        let resolvers: [() throws -> Void] = [
            { _ = try CaptureOptions.parse(["--config", path]).resolve() },
            { _ = try KafkaClientOptions.parse(["--config", path]).resolve() },
        ]
        for resolve in resolvers {
            do {
                try resolve()
                Issue.record("accepted: \(text)")
            } catch {
                #expect("\(error)".contains(mention), "\(error)")
                #expect(
                    "\(error)".contains(path) || "\(error)".contains("no.such.property"),
                    "names the file: \(error)"
                )
            }
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
        // consume and watermarks name the line too, a kafka: property's included.
        let property = try Self.file("kafka:\n  bootstrap.servers: k1:9092\n  no.such.property: 1\n")
        for (file, line) in [(path, 4), (property, 3)] {
            do {
                _ = try KafkaClientOptions.parse(["--config", file, "-b", "k1:9092"]).resolve()
                Issue.record("accepted: \(file)")
            } catch {
                #expect("\(error)".contains("\(file):\(line)"), "\(error)")
            }
        }
    }
}

/// `consume` and `watermarks` take the capture's own config file (`KafkaClientOptions`): layered as
/// the capture layers it, with what only a producer uses left out by librdkafka's property table.
@Suite struct ConsumerConfigurationTests {
    /// A capture's config file: its own keys, a `kafka:` map with producer-only properties and
    /// consumer ones, a `kafka-topic:` map with a producer-only topic property.
    static let captureConfig = """
        topic: probe-a
        rx-burst: 64
        tx-workers: 2
        headers: port,queue
        kafka:
          bootstrap.servers: k1:9092
          linger.ms: 20
          queue.buffering.max.messages: 500000
          compression.codec: lz4
          request.required.acks: 1
          socket.timeout.ms: 45000
          client.id: probe-a
        kafka-topic:
          message.timeout.ms: 30000

        """

    @Test func aCapturesConfigFileIsUsedAsIsWithProducerOnlyPropertiesLeftOut() throws {
        let path = try ConfigurationTests.file(Self.captureConfig)
        let resolved = try KafkaClientOptions.parse(["--config", path]).resolve(environment: [:])
        #expect(resolved.topic == "probe-a")
        let kept = Set(resolved.kafka.global.map(\.key))
        #expect(kept == ["bootstrap.servers", "socket.timeout.ms", "client.id"], "\(kept)")
        #expect(resolved.kafka.topic.isEmpty, "\(resolved.kafka.topic)")
        #expect(
            resolved.leftOut == [
                "linger.ms", "queue.buffering.max.messages", "compression.codec", "request.required.acks",
                "topic.message.timeout.ms",
            ],
            "\(resolved.leftOut)"
        )
        #expect(resolved.producer.globalValue("linger.ms") == "20", "a producer (limit) keeps every property")
        // One line says what was left out.
        let lines = resolved.notices.filter { $0.contains("producer-only") }
        #expect(lines.count == 1, "\(resolved.notices)")
        #expect(lines.first?.contains("5 producer-only properties") == true, "\(lines)")
        #expect(lines.first?.contains("linger.ms, queue.buffering.max.messages") == true, "\(lines)")
        #expect(lines.allSatisfy { !$0.contains("\n") })
        // Layering as the capture's: -X wins over the file, and the file's kept properties are librdkafka's.
        let layered = try KafkaClientOptions.parse(["--config", path, "-X", "socket.timeout.ms=1000", "-b", "k2:9092"])
            .resolve(environment: [:])
        #expect(layered.kafka.globalValue("socket.timeout.ms") == "1000")
        #expect(layered.kafka.globalValue("bootstrap.servers") == "k2:9092")
        try KafkaConfiguration.validate(resolved.kafka)
        // Nothing to leave out: no line.
        let consumerOnly = try ConfigurationTests.file("kafka:\n  bootstrap.servers: k1:9092\n")
        let plain = try KafkaClientOptions.parse(["--config", consumerOnly]).resolve(environment: [:])
        #expect(plain.leftOut.isEmpty && plain.notices.isEmpty, "\(plain.notices)")
    }

    /// The producer-only names are librdkafka's (its table's `P` rows, global and topic), not a list of ours:
    /// producer properties are among them, consumer and shared ones are not, and each is left out of a consumer.
    @Test func producerOnlyIsLibrdkafkasOwnTable() throws {
        let (global, topic) = KafkaConfiguration.producerOnly
        #expect(global.isSuperset(of: ["linger.ms", "queue.buffering.max.ms", "queue.buffering.max.messages"]))
        #expect(topic.isSuperset(of: ["request.required.acks", "acks", "message.timeout.ms", "partitioner"]))
        #expect(global.isDisjoint(with: ["bootstrap.servers", "group.id", "auto.offset.reset", "client.id"]))
        #expect(topic.isDisjoint(with: ["auto.offset.reset"]))
        for key in global {
            let value = KafkaProperties(global: [.init(key: key, value: "", origin: "test")])
            #expect(KafkaConfiguration.forConsumer(value).leftOut == [key])
        }
    }
}
