import CRdKafka
import Testing

@testable import FastcapaKafka

@Suite struct KafkaIniFileTests {
    @Test func readsBothGroupsWithCommentsAndSpacing() throws {
        let text = """
            # Fastcapa's example
            [kafka-global]
            bootstrap.servers = k1:9092,k2:9092
              ; another comment style
            queue.buffering.max.ms=100

            [kafka-topic]
            message.timeout.ms = 30000
            """
        let properties = try KafkaIniFile.parse(text, path: "k.ini").properties
        #expect(properties.global.map(\.key) == ["bootstrap.servers", "queue.buffering.max.ms"])
        #expect(properties.globalValue("bootstrap.servers") == "k1:9092,k2:9092")
        #expect(properties.topic.map(\.key) == ["message.timeout.ms"])
        #expect(properties.global[1].origin == "k.ini:5")
        #expect(properties.hasBrokers)
    }

    @Test(arguments: ["[kafka-global]\nlinger.ms = 5\n", "[kafka-topic]\nacks = all\n", "", "# only a comment\n"])
    func eitherGroupMayBeMissing(_ text: String) throws {
        let properties = try KafkaIniFile.parse(text, path: "k.ini").properties
        #expect(properties.global.count + properties.topic.count <= 1)
    }

    /// GKeyFile, which Fastcapa read the file with, ignores groups nobody asks
    /// for: they are skipped with their properties, and named with their line.
    @Test func unknownGroupsAreSkippedAndNamed() throws {
        let text = """
            # Fastcapa's file, with a group another tool reads
            [kafka-global]
            bootstrap.servers = k1:9092
            [pycapa]
            linger.ms = 99
            group.id = other
            [kafka-topic]
            acks = all
            [empty]
            """
        let parsed = try KafkaIniFile.parse(text, path: "k.ini")
        #expect(parsed.properties.global.map(\.key) == ["bootstrap.servers"])
        #expect(parsed.properties.topic.map(\.key) == ["acks"])
        #expect(
            parsed.skippedGroups == [
                .init(name: "pycapa", line: 4, properties: 2), .init(name: "empty", line: 9, properties: 0),
            ]
        )
    }

    @Test func errorsNameTheLineAndTheFix() {
        #expect(
            throws: KafkaIniFile.ParseError(
                path: "k.ini",
                line: 2,
                problem: "the section header '[]' has no name",
                fix: "Write it as [kafka-global] or [kafka-topic]."
            )
        ) {
            try KafkaIniFile.parse("# x\n[ ]\n", path: "k.ini")
        }
        for (text, line) in [
            ("[kafka-global]\nnot a property\n", 2), ("linger.ms = 1\n", 1),
            ("[kafka-global\n", 1), ("[kafka-global]\n = value\n", 2), ("[other]\nno equals sign\n", 2),
        ] {
            do {
                _ = try KafkaIniFile.parse(text, path: "k.ini")
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.line == line)
                #expect(!error.fix.isEmpty)
            }
        }
    }

    @Test func binaryDataIsRejected() {
        #expect(throws: KafkaIniFile.ParseError.self) { try KafkaIniFile.parse("\u{7F}ELF\u{0}\u{1}", path: "b") }
    }

    @Test func librdkafkaRejectsUnknownPropertiesNamingTheOrigin() {
        var properties = KafkaProperties()
        properties.setGlobal("no.such.thing", "1", origin: "k.ini:3")
        do {
            try KafkaConfiguration.validate(properties)
            Issue.record("accepted an unknown property")
        } catch {
            #expect(error.key == "no.such.thing")
            #expect(error.description.contains("k.ini:3"))
        }
        var topic = KafkaProperties()
        topic.topic.append(.init(key: "acks", value: "all", origin: "-X"))
        #expect(throws: Never.self) { try KafkaConfiguration.validate(topic) }
    }

    @Test func sensitiveKeysAreRecognised() {
        for key in [
            "sasl.password", "ssl.key.password", "ssl.key.pem", "ssl.certificate.pem", "sasl.oauthbearer.client.secret",
        ] {
            #expect(KafkaProperties.isSensitive(key), "\(key)")
        }
        #expect(!KafkaProperties.isSensitive("bootstrap.servers"))
    }

    /// A consumer opens its topics from the default topic configuration: the topic
    /// properties (`[kafka-topic]`, `-X topic.KEY`) go there, over fastcapa's defaults.
    @Test func topicPropertiesReachAConsumersDefaultTopicConfiguration() throws {
        func offsetReset(_ properties: KafkaProperties) throws -> String? {
            let conf = try KafkaConfiguration.makeConsumerConf(properties, defaults: [("auto.offset.reset", "error")])
            defer { rd_kafka_conf_destroy(conf) }
            guard let topicConf = rd_kafka_conf_get_default_topic_conf(conf) else { return nil }
            var buffer = [CChar](repeating: 0, count: 64)
            var size = buffer.count
            guard rd_kafka_topic_conf_get(topicConf, "auto.offset.reset", &buffer, &size) == RD_KAFKA_CONF_OK else {
                return nil
            }
            return text(of: buffer)
        }
        #expect(try offsetReset(KafkaProperties()) == "error")
        let earliest = KafkaProperties(topic: [.init(key: "auto.offset.reset", value: "earliest", origin: "-X")])
        // librdkafka names the value by the first of its synonyms (smallest, earliest, beginning).
        #expect(try offsetReset(earliest) == "smallest")
    }
}
