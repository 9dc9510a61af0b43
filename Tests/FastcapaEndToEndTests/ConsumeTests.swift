import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// `fastcapa consume`: captures → Kafka → pcap, pcapng or text.
    @Suite struct Consume {
        /// Captures built here → probe → Kafka → consume → a pcap identical
        /// record for record: same bytes, same timestamps, same order.
        @Test func roundTripGivesBackTheSameCapture() throws {
            try Self.roundTrip(SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 500))
        }

        /// The same with the shared corpus (less the records net_pcap cannot deliver whole).
        @Test(.sharedCorpus) func sharedCapturesRoundTrip() throws {
            // 196 captures one after another: keys jump back by years, so the window is scanned, not sought.
            try Self.roundTrip(try SharedCorpus.records().filter { $0.data.count <= 65_535 }, rangeOptions: ["--scan"])
        }

        static func roundTrip(_ records: [PcapRecord], rangeOptions: [String] = []) throws {
            let directory = TestFiles.temporaryDirectory()
            let input = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let broker = try Harness.Broker(partitions: 1)
            let captured = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                [
                    "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "-X",
                    "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(captured.status == 0, "\(captured.stderr)")
            #expect(captured.accounting["delivered"] == records.count)

            let back = try Self.consumePcap(broker, to: directory.appendingPathComponent("output.pcap").path).records
            #expect(back.count == records.count)
            #expect(back.map(\.micros) == records.map(\.micros))
            #expect(back.map(\.data) == records.map(\.data))

            // pcapng, read by tshark: the same times and lengths.
            let pcapng = directory.appendingPathComponent("output.pcapng").path
            #expect(
                try Harness.run(Harness.binary, ["consume", "-b", broker.address, "--format", "pcapng", "-o", pcapng])
                    .status == 0
            )
            let fields = try Harness.run(
                "/usr/bin/env",
                ["tshark", "-r", pcapng, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.cap_len"]
            )
            #expect(fields.status == 0, "\(fields.stderr)")
            let lines = fields.stdout.split(separator: "\n")
            #expect(lines.count == records.count)
            for (line, record) in zip(lines, records) {
                let parts = line.split(separator: "\t")
                #expect(Int(parts[1]) == record.data.count)
                let seconds = parts[0].split(separator: ".")
                #expect(UInt64(seconds[0]) == record.micros / 1_000_000, "\(line)")
            }

            // A pipe into tshark, a time range, chosen partitions and a count.
            let piped = try Harness.run(
                "/bin/sh",
                [
                    "-c",
                    "'\(Harness.binary)' consume -b \(broker.address) --format pcap | tshark -r - -T fields -e frame.number | wc -l",
                ]
            )
            #expect(piped.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(records.count)")
            let sorted = records.map(\.micros).sorted()
            let since = sorted[sorted.count / 2]
            let expectedInRange = records.filter { $0.micros >= since }.count
            let ranged = try Harness.run(
                Harness.binary,
                ["consume", "-b", broker.address, "--since", "\(Double(since) / 1e6)", "--partitions", "0"]
                    + rangeOptions
            )
            #expect(ranged.stdout.split(separator: "\n").count == expectedInRange, "\(ranged.stderr)")
            let counted = try Harness.run(Harness.binary, ["consume", "-b", broker.address, "-n", "5"])
            #expect(counted.stdout.split(separator: "\n").count == 5)
            #expect(counted.stdout.contains("length"))
        }

        /// Four partitions: the whole topic comes back in capture-time order; a
        /// window with a filter starts each partition at a sought offset and gives
        /// exactly what `tcpdump -r` keeps of the same records in that window.
        @Test func aWindowOfFourPartitionsComesBackFilteredInTimeOrder() throws {
            let records = SyntheticCaptures.protocolMix(count: 3000, seed: 9)
            let directory = TestFiles.temporaryDirectory()
            let (input, broker) = try Self.captured(records, partitions: 4, in: directory)
            let counts = try Harness.kcatCounts(broker: broker.address, partitions: 4)
            #expect(counts.allSatisfy { $0 > 100 }, "every partition holds packets: \(counts)")

            // Everything: every packet, in capture-time order although partitions interleave.
            let back = try Self.consumePcap(broker, to: directory.appendingPathComponent("all.pcap").path).records
            #expect(back.count == records.count)
            #expect(back.map(\.micros) == back.map(\.micros).sorted(), "non-decreasing capture times")
            #expect(Set(back.map(\.data)) == Set(records.map(\.data)))

            // A window and a filter: what tcpdump keeps of the same records, in order.
            let times = records.map(\.micros).sorted()
            let since = times[1200]
            let until = times[1800]
            let expression = "tcp or icmp"
            let expected = try Self.tcpdumpKeeps(input, expression, from: since, to: until, in: directory)
            #expect(expected.count > 100)
            let ranged = try Self.consumePcap(
                broker,
                [
                    "--since", "\(Double(since) / 1e6)", "--until", "\(Double(until) / 1e6)", "--filter", expression,
                    "--slack", "0.5",
                ],
                to: directory.appendingPathComponent("window.pcap").path
            )
            let got = ranged.records
            #expect(got.map(\.micros) == expected.map(\.micros))
            #expect(got.map(\.data) == expected.map(\.data))
            // The seek started every partition past its beginning.
            let starts = ranged.stderr.split(separator: "started at offsets ").last.map {
                $0.split(separator: "\n")[0].split(separator: " ").compactMap { Int($0.split(separator: ":")[1]) }
            }
            #expect(starts?.count == 4 && starts!.allSatisfy { $0 > 100 }, "\(ranged.stderr)")

            // A filter libpcap refuses: exit 64 with libpcap's message.
            let bad = try Harness.run(Harness.binary, ["consume", "-b", broker.address, "--filter", "tcp and and"])
            #expect(bad.status == 64)
            #expect(bad.stderr.contains("syntax error"), "\(bad.stderr)")
        }

        /// A hundred partitions: the seek searches them all at once, in a few
        /// rounds, and reads a small part of the topic for a 1 % window; a full
        /// scan of the same window writes the same file.
        @Test func aWindowOfAHundredPartitionsIsSoughtNotScanned() throws {
            let records = SyntheticCaptures.protocolMix(count: 60_000, seed: 13)
            let directory = TestFiles.temporaryDirectory()
            let (_, broker) = try Self.captured(records, partitions: 100, in: directory)

            let times = records.map(\.micros).sorted()
            let (since, until) = (times[30_000], times[30_600])
            let window = ["--since", "\(Double(since) / 1e6)", "--until", "\(Double(until) / 1e6)", "--slack", "0.05"]
            let sought = try Self.consumePcap(broker, window, to: directory.appendingPathComponent("seek.pcap").path)
            let scanned = try Self.consumePcap(
                broker,
                window + ["--scan"],
                to: directory.appendingPathComponent("scan.pcap").path
            )
            let expected = records.filter { $0.micros >= since && $0.micros < until }
            #expect(sought.records.count == expected.count)
            #expect(sought.records.map(\.micros) == scanned.records.map(\.micros))
            #expect(sought.records.map(\.data) == scanned.records.map(\.data))
            #expect(Set(sought.records.map(\.data)) == Set(expected.map(\.data)))

            // consume: N packets written of M messages read; seek: F fetches in R rounds (S s), started at ...
            let summary = sought.stderr.split(separator: "\n").last { $0.hasPrefix("consume: ") } ?? ""
            let numbers = summary.split(whereSeparator: { !$0.isNumber && $0 != "." }).compactMap { Double($0) }
            #expect(numbers.count >= 5, "\(summary)")
            if numbers.count >= 5 {
                let (read, rounds) = (Int(numbers[1]), Int(numbers[3]))
                // The window and its slack are 1.3 % of the topic; the fetches' runs add some.
                #expect(read < records.count / 10, "\(summary)")
                // Partitions of about 600 messages (under 2^10): a few rounds for all of them at
                // once (one when the first fetch's run holds the target), never 100 times as many.
                #expect(rounds >= 1 && rounds <= 2 + 3 * 10, "\(summary)")
            }
            #expect(summary.contains("(and 92 more partitions)"), "\(summary)")
            #expect(scanned.stderr.contains("of \(records.count) messages read"), "\(scanned.stderr)")
        }

        /// Bad input that needs a broker: a topic that does not exist, an output
        /// that cannot be written, keys that are not capture times, a broker that
        /// does not answer. One message, a non-zero exit, no half-written file.
        @Test func badInputAgainstABrokerIsRefusedClearly() throws {
            let broker = try Harness.Broker(partitions: 1)
            let directory = TestFiles.temporaryDirectory()
            let unknown = try Harness.run(
                Harness.binary,
                ["consume", "-b", broker.address, "-t", "nosuchtopic", "--timeout", "5"]
            )
            #expect(unknown.status != 0 && !unknown.signaled)
            #expect(unknown.stderr.contains("topic 'nosuchtopic' does not exist"), "\(unknown.stderr)")

            let unwritable = try Harness.run(
                Harness.binary,
                ["consume", "-b", broker.address, "-o", "/nonexistent/folder/out.pcap", "--format", "pcap"]
            )
            #expect(unwritable.status != 0)
            #expect(unwritable.stderr.contains("cannot write '/nonexistent/folder/out.pcap'"), "\(unwritable.stderr)")

            let produced = try Harness.run(
                "/bin/sh",
                ["-c", "printf 'abc:hello\\n' | kcat -P -b \(broker.address) -t pcap -K :"]
            )
            #expect(produced.status == 0, "\(produced.stderr)")
            let output = directory.appendingPathComponent("out.pcap").path
            let foreign = try Harness.run(
                Harness.binary,
                ["consume", "-b", broker.address, "--format", "pcap", "-o", output]
            )
            #expect(foreign.status != 0)
            #expect(foreign.stderr.contains("has a key of 3 bytes, not 8"), "\(foreign.stderr)")
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            #expect(left.isEmpty, "nothing half-written is left: \(left)")

            let started = Date()
            let silent = try Harness.run(
                Harness.binary,
                ["consume", "-b", "127.0.0.1:1", "--timeout", "2"],
                timeout: 60
            )
            #expect(silent.status != 0 && !silent.signaled)
            #expect(silent.stderr.contains("within --timeout 2 s"), "\(silent.stderr)")
            #expect(Date().timeIntervalSince(started) < 20)
        }

        /// The records of `input` that tcpdump's `expression` keeps, captured in `since..<until`.
        static func tcpdumpKeeps(
            _ input: String,
            _ expression: String,
            from since: UInt64,
            to until: UInt64,
            in directory: URL
        ) throws -> [PcapRecord] {
            let kept = directory.appendingPathComponent("tcpdump.pcap").path
            let tcpdump = try Harness.run("/usr/bin/env", ["tcpdump", "-r", input, "-w", kept, expression])
            #expect(tcpdump.status == 0, "\(tcpdump.stderr)")
            return try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: kept)))).records
                .filter { $0.micros >= since && $0.micros < until }
        }

        /// `--from stored` with a group that never committed starts at each partition's first message, not
        /// with a failure saying retention deleted it (nothing was deleted); the same group then goes on where
        /// it stopped: nothing again, then exactly what was captured since.
        @Test func consumeFromStoredStartsANewGroupAtTheBeginningAndGoesOnWhereItStopped() throws {
            let first = SyntheticCaptures.protocolMix(count: 300, seed: 251)
            let directory = TestFiles.temporaryDirectory()
            let (_, broker) = try Self.captured(first, partitions: 2, in: directory)
            func read(_ name: String, group: String) throws -> [PcapRecord] {
                try Self.consumePcap(
                    broker,
                    ["--from", "stored", "--group", group],
                    to: directory.appendingPathComponent(name).path
                ).records
            }
            let fresh = try read("fresh.pcap", group: "g1")
            #expect(Set(fresh.map(\.data)) == Set(first.map(\.data)) && fresh.count == first.count)
            #expect(try read("again.pcap", group: "g1").isEmpty, "the group committed where it stopped")

            let second = SyntheticCaptures.protocolMix(count: 120, seed: 252)
            let input = try Harness.writePcap(second, to: directory, name: "second.pcap")
            let captured = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                ["--idle-exit", "2", "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)"]
            )
            #expect(captured.status == 0, "\(captured.stderr)")
            let since = try read("since.pcap", group: "g1")
            #expect(since.count == second.count && Set(since.map(\.data)) == Set(second.map(\.data)))
            #expect(try read("other.pcap", group: "g2").count == first.count + second.count, "another new group")
        }

        /// `consume` and `watermarks` read the capture's own config file for their Kafka
        /// settings (the `kafka:` map, `@NAME` secrets through `--credentials-directory`, the topic),
        /// leave its producer-only properties out instead of passing them to a consumer (librdkafka
        /// would warn about each) and say so in one line, refuse a topic per port without `-t`, a
        /// credential missing from the folder (naming the folder and the option) and a bad line.
        @Test func consumeAndWatermarksReadTheCapturesConfigFile() throws {
            let records = SyntheticCaptures.protocolMix(count: 400, seed: 24)
            let directory = TestFiles.temporaryDirectory()
            let input = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let broker = try Harness.Broker(partitions: 2, topic: "secured")
            let credentials = directory.appendingPathComponent("credentials")
            try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
            try Data("not-used-on-plaintext\n".utf8).write(to: credentials.appendingPathComponent("kafka-key-password"))
            let config = directory.appendingPathComponent("fastcapa.yaml")
            try Data(
                """
                topic: secured
                stats-interval: 0
                rx-burst: 64
                headers: port,queue
                kafka:
                  bootstrap.servers: \(broker.address)
                  linger.ms: 5
                  queue.buffering.max.messages: 200000
                  compression.codec: lz4
                  enable.idempotence: true
                  ssl.key.password: "@kafka-key-password"
                kafka-topic:
                  request.required.acks: -1

                """.utf8
            ).write(to: config)
            let captured = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                ["--config", config.path, "--credentials-directory", credentials.path, "--idle-exit", "2"]
            )
            #expect(captured.status == 0, "\(captured.stderr)")
            #expect(captured.accounting["delivered"] == records.count)

            let output = directory.appendingPathComponent("back.pcap").path
            let consumed = try Harness.run(
                Harness.binary,
                [
                    "consume", "--config", config.path, "--credentials-directory", credentials.path, "--format", "pcap",
                    "-o", output,
                ]
            )
            #expect(consumed.status == 0, "\(consumed.stderr)")
            #expect(!consumed.stderr.contains("producer property"), "\(consumed.stderr)")
            let leftOut =
                "fastcapa consume: left out 5 producer-only properties a consumer does not use (librdkafka's property table): linger.ms, queue.buffering.max.messages, compression.codec, enable.idempotence, topic.request.required.acks\n"
            #expect(consumed.stderr.components(separatedBy: "producer-only").count == 2, "\(consumed.stderr)")
            #expect(consumed.stderr.contains(leftOut), "\(consumed.stderr)")
            let back = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))).records
            #expect(back.count == records.count)
            #expect(Set(back.map(\.data)) == Set(records.map(\.data)))

            let watermarks = try Harness.run(
                Harness.binary,
                ["watermarks", "--config", config.path, "--credentials-directory", credentials.path]
            )
            #expect(watermarks.status == 0, "\(watermarks.stderr)")
            #expect(watermarks.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(records.count)")
            #expect(!watermarks.stderr.contains("producer property"), "\(watermarks.stderr)")
            #expect(watermarks.stderr.contains("fastcapa watermarks: left out 5 producer-only"), "\(watermarks.stderr)")

            // A folder without the credential: the refusal names the folder and the option.
            let empty = directory.appendingPathComponent("empty")
            try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
            let missing = try Harness.run(
                Harness.binary,
                ["watermarks", "--config", config.path, "--credentials-directory", empty.path]
            )
            #expect(missing.status == 64, "\(missing.stderr)")
            #expect(
                missing.stderr.contains("credentials folder '\(empty.path)' (--credentials-directory)"),
                "\(missing.stderr)"
            )

            // A bad line in the file: refused, the line named.
            let bad = directory.appendingPathComponent("bad.yaml")
            try Data("topic: secured\nrx-burst: 0\nkafka:\n  bootstrap.servers: \(broker.address)\n".utf8).write(
                to: bad
            )
            for command in ["consume", "watermarks"] {
                let refused = try Harness.run(Harness.binary, [command, "--config", bad.path])
                #expect(refused.status == 64, "\(refused.stderr)")
                #expect(refused.stderr.contains("\(bad.path):2"), "\(refused.stderr)")
            }

            // The secret is the service's credential: without the folder, the refusal names the option.
            let noCredentials = try Harness.run(Harness.binary, ["consume", "--config", config.path, "-n", "1"])
            #expect(noCredentials.status == 64, "\(noCredentials.stderr)")
            #expect(noCredentials.stderr.contains("--credentials-directory /etc/fastcapa"), "\(noCredentials.stderr)")

            // A topic per port: which one to read is -t's to say.
            let perPort = directory.appendingPathComponent("per-port.yaml")
            try Data("topic: pcap-{port}\nkafka:\n  bootstrap.servers: \(broker.address)\n".utf8).write(to: perPort)
            let template = try Harness.run(Harness.binary, ["consume", "--config", perPort.path, "-n", "1"])
            #expect(template.status == 64, "\(template.stderr)")
            #expect(template.stderr.contains("-t pcap-0"), "\(template.stderr)")
        }

        /// `records` captured by the probe into a broker of `partitions`: the input
        /// pcap's path and the broker.
        static func captured(
            _ records: [PcapRecord],
            partitions: Int,
            in directory: URL
        ) throws -> (input: String, broker: Harness.Broker) {
            let input = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let broker = try Harness.Broker(partitions: partitions)
            let captured = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                [
                    "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "-b", "8", "-X",
                    "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(captured.status == 0, "\(captured.stderr)")
            #expect(captured.accounting["delivered"] == records.count)
            return (input, broker)
        }

        /// `consume --format pcap -o path` plus `options`: the file it wrote, and its standard error.
        static func consumePcap(
            _ broker: Harness.Broker,
            _ options: [String] = [],
            to path: String
        ) throws -> (records: [PcapRecord], snapLength: UInt32, stderr: String) {
            try consumePcap(address: broker.address, options, to: path)
        }

        /// The same from any broker, by its address.
        static func consumePcap(
            address: String,
            _ options: [String] = [],
            to path: String
        ) throws -> (records: [PcapRecord], snapLength: UInt32, stderr: String) {
            let consumed = try Harness.run(
                Harness.binary,
                ["consume", "-b", address, "--format", "pcap", "-o", path] + options
            )
            #expect(consumed.status == 0, "\(consumed.stderr)")
            let file = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
            return (file.records, file.snapLength, consumed.stderr)
        }

        @Test func badConsumeInputIsRefusedClearly() throws {
            let cases: [([String], String)] = [
                (["consume"], "no broker"),
                (["consume", "-b", "x:1", "--format", "json"], "--format"),
                (["consume", "-b", "x:1", "--from", "middle"], "--from"),
                (["consume", "-b", "x:1", "--since", "yesterday"], "--since"),
                (["consume", "-b", "x:1", "--partitions", "a,b"], "--partitions"),
                (["consume", "-b", "x:1", "--since", "20", "--until", "10"], "--since must come before --until"),
            ]
            for (arguments, mention) in cases {
                let result = try Harness.run(Harness.binary, arguments, timeout: 30)
                #expect(result.status != 0)
                #expect(!result.signaled)
                #expect(result.stderr.contains(mention), "\(arguments): \(result.stderr)")
            }
        }
    }
}
