import FastcapaKafka
import FastcapaTestSupport
import Foundation
import Testing

@testable import FastcapaCLI

/// Secrets and settings from outside the files: `${NAME}` in YAML and INI
/// values, `@/path` and `@NAME` (systemd credentials) for secret properties.
@Suite struct ValueReferencesTests {
    static func write(
        _ text: String,
        _ name: String,
        in directory: URL = TestFiles.temporaryDirectory()
    ) throws
        -> String
    {
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func environmentReferencesInTheConfigFile() throws {
        let path = try Self.write(
            """
            eal: [--no-huge, "--vdev=net_pcap0,rx_pcap=${PCAP}"]
            topic: ${TOPIC}
            rx-burst: ${BURST:-64}
            kafka:
              bootstrap.servers: ${BROKERS}:9092
              sasl.username: user-$${literal}
            """,
            "fastcapa.yaml"
        )
        let environment = ["PCAP": "/data/trace.pcap", "TOPIC": "packets", "BROKERS": "kafka1"]
        let resolved = try CaptureOptions.parse(["--config", path]).resolve(environment: environment)
        #expect(resolved.eal == ["--no-huge", "--vdev=net_pcap0,rx_pcap=/data/trace.pcap"])
        #expect(resolved.settings.topic == "packets")
        #expect(resolved.settings.rxBurst == 64, "the default after :-")
        #expect(resolved.kafka.globalValue("bootstrap.servers") == "kafka1:9092")
        #expect(resolved.kafka.globalValue("sasl.username") == "user-${literal}")
        let given = try CaptureOptions.parse(["--config", path]).resolve(
            environment: environment.merging(["BURST": "128"]) { $1 }
        )
        #expect(given.settings.rxBurst == 128)
    }

    @Test func environmentReferencesInTheIniFile() throws {
        let path = try Self.write(
            "[kafka-global]\nbootstrap.servers = ${BROKERS}\n[kafka-topic]\nmessage.timeout.ms = ${TIMEOUT}\n",
            "kafka.ini"
        )
        let resolved = try CaptureOptions.parse(["-c", path]).resolve(
            environment: ["BROKERS": "k1:9092,k2:9092", "TIMEOUT": "30000"]
        )
        #expect(resolved.kafka.globalValue("bootstrap.servers") == "k1:9092,k2:9092")
        #expect(resolved.kafka.topic.last?.value == "30000")
    }

    /// An unset variable is refused, naming it and where it was used.
    @Test(arguments: [
        ("fastcapa.yaml", "topic: ${NO_SUCH_TOPIC_VAR}\n", ":1"),
        ("fastcapa.yaml", "kafka:\n  sasl.password: ${NO_SUCH_TOPIC_VAR}\n", ":2"),
        ("fastcapa.yaml", "eal: [\"--vdev=${NO_SUCH_TOPIC_VAR}\"]\n", ":1"),
        ("kafka.ini", "[kafka-global]\n\nsasl.password = ${NO_SUCH_TOPIC_VAR}\n", ":3"),
    ])
    func unsetVariablesAreNamed(_ name: String, _ text: String, _ line: String) throws {
        let path = try Self.write(text, name)
        let flag = name.hasSuffix(".ini") ? "-c" : "--config"
        do {
            _ = try CaptureOptions.parse([flag, path]).resolve(environment: [:])
            Issue.record("accepted an unset variable")
        } catch {
            let message = "\(error)"
            #expect(message.contains("NO_SUCH_TOPIC_VAR") && message.contains("is not set"), "\(message)")
            #expect(message.contains(path + line), "names the file and line: \(message)")
        }
    }

    @Test(arguments: ["${unclosed", "${1BAD}", "${}", "${A-B}"])
    func malformedReferencesAreRefused(_ value: String) {
        #expect(throws: SettingError.self) {
            try ValueReferences.expandEnvironment(value, at: "f:1", environment: ["A": "x"])
        }
    }

    @Test func textWithoutReferencesIsUntouched() throws {
        for text in ["", "plain", "$HOME", "a$b", "50$", "{}", "$ {x}"] {
            #expect(try ValueReferences.expandEnvironment(text, at: "f:1", environment: [:]) == text)
        }
        #expect(
            try ValueReferences.expandEnvironment("${A}${B}-${A}", at: "f:1", environment: ["A": "1", "B": "2"])
                == "12-1"
        )
        #expect(try ValueReferences.expandEnvironment("${E:-d}", at: "f:1", environment: ["E": ""]) == "d")
    }

    /// `@/path` and `@NAME` (a systemd credential) for secret properties; the
    /// value is read from the file, one trailing newline dropped; printed
    /// configurations still say [redacted].
    @Test func secretsComeFromFilesAndCredentials() throws {
        let directory = TestFiles.temporaryDirectory()
        let passwordFile = try Self.write("hunter2\n", "password", in: directory)
        let credentials = directory.appendingPathComponent("credentials")
        try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
        _ = try Self.write("k3y-from-systemd", "kafka-key-password", in: credentials)
        let ini = try Self.write(
            "[kafka-global]\nsasl.password = @\(passwordFile)\nssl.key.password = @kafka-key-password\n"
                + "sasl.username = @not-a-secret\n",
            "kafka.ini",
            in: directory
        )
        let resolved = try CaptureOptions.parse(["-c", ini, "-X", "ssl.keystore.password=@@literal"])
            .resolve(environment: ["CREDENTIALS_DIRECTORY": credentials.path])
        #expect(resolved.kafka.globalValue("sasl.password") == "hunter2")
        #expect(resolved.kafka.globalValue("ssl.key.password") == "k3y-from-systemd")
        #expect(resolved.kafka.globalValue("sasl.username") == "@not-a-secret", "only secrets read files")
        #expect(resolved.kafka.globalValue("ssl.keystore.password") == "@literal")
        let printed = resolved.yaml()
        #expect(!printed.contains("hunter2") && !printed.contains("k3y-from-systemd") && !printed.contains("@literal"))
        #expect(printed.contains("\"sasl.password\": \"[redacted]\""))
    }

    @Test func missingSecretsSayWhatToDo() throws {
        let cases: [([String], [String: String], [String])] = [
            (
                ["-X", "sasl.password=@/nonexistent/secret"], [:],
                ["sasl.password", "-X", "/nonexistent/secret", "does not exist"]
            ),
            (
                ["-X", "sasl.password=@kafka-password"], [:],
                ["CREDENTIALS_DIRECTORY", "LoadCredential=kafka-password"]
            ),
            (["-X", "ssl.key.password=@gone"], ["CREDENTIALS_DIRECTORY": "/nonexistent"], ["/nonexistent/gone"]),
        ]
        for (arguments, environment, mentions) in cases {
            do {
                _ = try CaptureOptions.parse(arguments).resolve(environment: environment)
                Issue.record("accepted \(arguments)")
            } catch {
                for text in mentions { #expect("\(error)".contains(text), "\(error)") }
            }
        }
        let empty = try Self.write("\n", "empty")
        #expect(throws: SettingError.self) {
            try CaptureOptions.parse(["-X", "sasl.password=@\(empty)"]).resolve(environment: [:])
        }
    }

    /// `--credentials-directory`: a shell (`fastcapa check`, `--print-config`) reads `@NAME` from the
    /// folder the unit's LoadCredential= lines read, and so resolves what the service does; a refusal
    /// without it names the option.
    @Test func aShellSeesTheServicesCredentialsThroughCredentialsDirectory() throws {
        let folder = TestFiles.temporaryDirectory()
        _ = try Self.write("s3cret\n", "kafka-password", in: folder)
        let arguments = ["-X", "sasl.password=@kafka-password"]
        let service = try CaptureOptions.parse(arguments).resolve(environment: ["CREDENTIALS_DIRECTORY": folder.path])
        let shell = try CaptureOptions.parse(arguments + ["--credentials-directory", folder.path])
            .resolve(environment: [:])
        #expect(shell.kafka.globalValue("sasl.password") == "s3cret")
        #expect(shell.kafka.globalValue("sasl.password") == service.kafka.globalValue("sasl.password"))
        do {
            _ = try CaptureOptions.parse(arguments).resolve(environment: [:])
            Issue.record("a credential resolved with no folder to read it from")
        } catch {
            #expect("\(error)".contains("--credentials-directory /etc/fastcapa"), "\(error)")
        }
        do {
            _ = try CaptureOptions.parse(arguments + ["--credentials-directory", "/nonexistent"])
                .resolve(environment: [:])
            Issue.record("a missing credentials folder accepted")
        } catch {
            #expect("\(error)".contains("credentials-directory: '/nonexistent' is not a folder"), "\(error)")
        }
        // --print-config: the same file either way, the secret redacted.
        #expect(shell.yaml() == service.yaml())
        #expect(!shell.yaml().contains("s3cret") && shell.yaml().contains("\"sasl.password\": \"[redacted]\""))
    }

    /// A credential the folder lacks, or cannot give as text, is refused naming the folder and what
    /// gave it (the option or systemd's variable), with the fix.
    @Test func aCredentialTheFolderCannotGiveNamesTheFolderAndTheOption() throws {
        let folder = TestFiles.temporaryDirectory()
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("a-folder"),
            withIntermediateDirectories: true
        )
        try Data([0x73, 0x00, 0xff]).write(to: folder.appendingPathComponent("binary"))
        for (name, problem) in [("missing", "does not exist"), ("a-folder", "is a directory"), ("binary", "not UTF-8")]
        {
            let arguments = ["-X", "sasl.password=@\(name)"]
            for (options, environment, source) in [
                (arguments + ["--credentials-directory", folder.path], [:], "--credentials-directory"),
                (arguments, ["CREDENTIALS_DIRECTORY": folder.path], "$CREDENTIALS_DIRECTORY"),
            ] {
                do {
                    _ = try CaptureOptions.parse(options).resolve(environment: environment)
                    Issue.record("@\(name) accepted")
                } catch {
                    let text = "\(error)"
                    #expect(text.contains("sasl.password (from -X)") && text.contains(problem), "\(text)")
                    #expect(text.contains("credentials folder '\(folder.path)' (\(source))"), "\(text)")
                    #expect(text.contains("--credentials-directory DIR"), "\(text)")
                }
            }
        }
    }

    /// Configs/tls-sasl.yaml, Operations.md's worked example, loads with its
    /// password from a systemd credential and is accepted by this librdkafka.
    @Test func theTlsSaslExampleLoads() throws {
        let credentials = TestFiles.temporaryDirectory()
        _ = try Self.write("correct horse battery staple\n", "kafka-password", in: credentials)
        let example = TestFiles.packageRoot.appendingPathComponent("Configs/tls-sasl.yaml").path
        let resolved = try CaptureOptions.parse(["--config", example]).resolve(
            environment: ["CREDENTIALS_DIRECTORY": credentials.path]
        )
        #expect(resolved.kafka.globalValue("security.protocol") == "SASL_SSL")
        #expect(resolved.kafka.globalValue("sasl.mechanisms") == "SCRAM-SHA-512")
        #expect(resolved.kafka.globalValue("sasl.password") == "correct horse battery staple")
        #expect(resolved.kafka.globalValue("bootstrap.servers") == "kafka1.example.com:9093,kafka2.example.com:9093")
        #expect(!resolved.yaml().contains("battery"))
        let brokers = try CaptureOptions.parse(["--config", example]).resolve(
            environment: ["CREDENTIALS_DIRECTORY": credentials.path, "KAFKA_BROKERS": "k:9093"]
        )
        #expect(brokers.kafka.globalValue("bootstrap.servers") == "k:9093")
    }
}
