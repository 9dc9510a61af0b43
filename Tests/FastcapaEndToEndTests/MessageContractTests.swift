import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// The message contract (Documentation/MessageFormat.md): a cut frame carries
    /// `orig_len`, `--headers` adds port, queue and probe to every message,
    /// `{port}` in the topic gives each port its topic; and `consume` gives all of
    /// it back in pcap and pcapng.
    @Suite struct MessageContract {
        /// A message as kcat -J shows it: partition, offset and headers (name, value).
        struct KcatMessage {
            var partition: Int
            var offset: Int
            var headers: [(String, String)]
            func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
        }

        /// Reads a topic with kcat's JSON envelope: an independent reader of the headers.
        static func kcatJSON(broker: String, topic: String) throws -> [KcatMessage] {
            let result = try Harness.run(
                "/usr/bin/env",
                ["kcat", "-C", "-b", broker, "-t", topic, "-o", "beginning", "-e", "-q", "-J"],
                timeout: 60
            )
            guard result.status == 0 else { throw HarnessError("kcat failed: \(result.stderr)") }
            return try result.stdout.split(separator: "\n").map { line in
                let object = try #require(
                    try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    "kcat -J line: \(line)"
                )
                let flat = object["headers"] as? [String] ?? []
                let pairs = stride(from: 0, to: flat.count - 1, by: 2).map { (flat[$0], flat[$0 + 1]) }
                return KcatMessage(
                    partition: object["partition"] as? Int ?? -1,
                    offset: object["offset"] as? Int ?? -1,
                    headers: pairs
                )
            }.sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
        }

        static func captureOptions(_ broker: Harness.Broker) -> [String] {
            [
                "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "-X",
                "bootstrap.servers=\(broker.address)",
            ]
        }

        /// `--snap-length 128 --headers port,queue,probe`: every record comes back
        /// with its bytes up to 128, its original length, its capture time and its
        /// source, in kcat's view, in consume's pcap and in its pcapng (tshark
        /// and capinfos agree, and see the cut frames as cut).
        @Test func cutFramesKeepTheirOriginalLengthAndMessagesTheirSource() throws {
            let records = SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 400)
            let cut = records.filter { $0.data.count > 128 }.count
            #expect(cut > 50, "enough frames longer than the snap length")
            let directory = TestFiles.temporaryDirectory()
            let input = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let broker = try Harness.Broker(partitions: 1)
            let captured = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                Self.captureOptions(broker) + [
                    "--snap-length", "128", "--headers", "port,queue,probe", "--probe-id", "tap-7",
                ]
            )
            #expect(captured.status == 0, "\(captured.stderr)")
            #expect(captured.balanced)
            #expect(captured.accounting["delivered"] == records.count)
            #expect(captured.accounting["truncated"] == cut)

            // kcat: every message has port, queue and probe; the cut ones orig_len.
            let messages = try Self.kcatJSON(broker: broker.address, topic: "pcap")
            #expect(messages.count == records.count)
            for (message, record) in zip(messages, records) {
                #expect(message.header("port") == "0")
                #expect(message.header("queue") == "0")
                #expect(message.header("probe") == "tap-7")
                #expect(
                    message.header("orig_len") == (record.data.count > 128 ? "\(record.data.count)" : nil),
                    "offset \(message.offset): \(message.headers)"
                )
            }

            // consume, pcap: bytes up to 128, the original length, the time; the header's snap length.
            let pcap = directory.appendingPathComponent("out.pcap").path
            let file = try EndToEnd.Consume.consumePcap(broker, ["--snap-length", "128"], to: pcap)
            #expect(file.snapLength == 128)
            #expect(file.records.count == records.count)
            for (back, record) in zip(file.records, records) {
                #expect(back.data == Array(record.data.prefix(128)))
                #expect(back.originalLength == UInt32(record.data.count))
                #expect(back.micros == record.micros)
            }

            // A value longer than the header's snap length is refused, and no file is left.
            let short = directory.appendingPathComponent("short.pcap").path
            let refused = try Harness.run(
                Harness.binary,
                ["consume", "-b", broker.address, "--format", "pcap", "--snap-length", "100", "-o", short]
            )
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("more than the snap length 100"), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: short))
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: directory.path).allSatisfy {
                    !$0.contains("partial")
                }
            )

            // consume, pcapng: one interface named probe:port, µs, fastcapa named; tshark and capinfos.
            let pcapng = directory.appendingPathComponent("out.pcapng").path
            let consumedNg = try Harness.run(
                Harness.binary,
                ["consume", "-b", broker.address, "--format", "pcapng", "--snap-length", "128", "-o", pcapng]
            )
            #expect(consumedNg.status == 0, "\(consumedNg.stderr)")
            let fields = try Harness.run(
                "/usr/bin/env",
                [
                    "tshark", "-r", pcapng, "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len", "-e",
                    "frame.interface_name", "-e", "frame.time_epoch",
                ]
            )
            #expect(fields.status == 0, "\(fields.stderr)")
            let lines = fields.stdout.split(separator: "\n")
            #expect(lines.count == records.count)
            for (line, record) in zip(lines, records) {
                let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
                #expect(parts.count == 4, "\(line)")
                guard parts.count == 4 else { continue }
                #expect(Int(parts[0]) == record.data.count, "\(line)")
                #expect(Int(parts[1]) == min(record.data.count, 128), "\(line)")
                #expect(parts[2] == "tap-7:0", "\(line)")
                let micros = parts[3].split(separator: ".").map(String.init)
                #expect(micros.count == 2 && UInt64("\(micros[0])\(micros[1].prefix(6))") == record.micros, "\(line)")
            }
            for path in [pcap, pcapng] {
                let info = try Harness.run("/usr/bin/env", ["capinfos", "-c", "-l", path])
                #expect(info.status == 0, "\(info.stderr)")
                #expect(info.stdout.contains("Number of packets:   \(records.count)"), "\(info.stdout)")
                #expect(info.stdout.contains("128 bytes"), "capinfos sees the snap length: \(info.stdout)")
            }
            let truncated = try Harness.run(
                "/usr/bin/env",
                ["tshark", "-r", pcapng, "-Y", "frame.cap_len < frame.len", "-T", "fields", "-e", "frame.number"]
            )
            #expect(truncated.stdout.split(separator: "\n").count == cut, "tshark sees the cut frames as cut")
            let application = try Harness.run("/usr/bin/env", ["capinfos", "-k", pcapng])
            #expect(application.stdout.contains("fastcapa"), "shb_userappl names fastcapa: \(application.stdout)")
        }

        /// `--topic 'pcap-{port}'`: two ports, each to its own topic; no header and
        /// no cut, so the messages are the default path's (batched, no headers).
        @Test func eachPortGoesToItsOwnTopicWithoutHeadersByDefault() throws {
            let first = SyntheticCaptures.protocolMix(count: 120, seed: 3)
            let second = SyntheticCaptures.protocolMix(count: 80, seed: 4)
            let directory = TestFiles.temporaryDirectory()
            let inputs = try [first, second].enumerated().map { index, records in
                try Harness.writePcap(records, to: directory, name: "input\(index).pcap")
            }
            let broker = try Harness.Broker(partitions: 1, topic: "pcap-0,pcap-1")
            let captured = try Harness.probe(
                eal: Harness.eal(
                    lcores: 5,
                    vdevs: ["net_pcap0,rx_pcap=\(inputs[0])", "net_pcap1,rx_pcap=\(inputs[1])"]
                ),
                Self.captureOptions(broker) + ["-p", "0x3", "-t", "pcap-{port}"]
            )
            #expect(captured.status == 0, "\(captured.stderr)")
            #expect(captured.balanced)
            #expect(captured.accounting["delivered"] == first.count + second.count)
            for (port, records) in [first, second].enumerated() {
                let messages = try Self.kcatJSON(broker: broker.address, topic: "pcap-\(port)")
                #expect(messages.count == records.count, "topic pcap-\(port)")
                #expect(messages.allSatisfy { $0.headers.isEmpty }, "no header on the default path")
                let values = try Harness.kcatRead(broker: broker.address, topic: "pcap-\(port)")
                #expect(values.map(\.value) == records.map(\.data))
            }
        }
    }
}
