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

        /// Each interface block's `if_tsresol` in a pcapng file fastcapa wrote (little-endian).
        static func timestampResolutions(_ path: String) throws -> [UInt8] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            func word(_ at: Int) -> Int {
                Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
            }
            var resolutions: [UInt8] = []
            var block = 0
            while block + 12 <= bytes.count {
                let length = word(block + 4)
                guard length >= 12 else { break }
                if word(block) == 1 {
                    // Options after the type, length, link type, reserved and snap length.
                    var option = block + 16
                    while option + 4 <= block + length - 4 {
                        let code = Int(bytes[option]) | Int(bytes[option + 1]) << 8
                        let size = Int(bytes[option + 2]) | Int(bytes[option + 3]) << 8
                        if code == 0 { break }
                        if code == 9 && size == 1 { resolutions.append(bytes[option + 4]) }
                        option += 4 + (size + 3) / 4 * 4
                    }
                }
                block += length
            }
            return resolutions
        }

        /// `--headers time_ns` from net_pcap: every message carries the capture
        /// time in ns (8 bytes, big-endian), the key's µs × 1000 exactly (net_pcap's
        /// times are µs); `consume --format pcapng` writes them with `if_tsresol` 9,
        /// and tcpdump reads the ns back.
        @Test func timeNanosCarriesTheCaptureTimeInNanoseconds() throws {
            let records = SyntheticCaptures.protocolMix(count: 200, seed: 5)
            let directory = TestFiles.temporaryDirectory()
            let input = try Harness.writePcap(records, to: directory, name: "input.pcap")
            let broker = try Harness.Broker(partitions: 1)
            let captured = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                Self.captureOptions(broker) + ["--headers", "time_ns"]
            )
            #expect(captured.status == 0, "\(captured.stderr)")
            #expect(captured.balanced)
            #expect(captured.accounting["delivered"] == records.count)
            #expect(captured.stderr.contains("port 0 (net_pcap): device timestamps, epoch µs"), "\(captured.stderr)")

            // kcat: every message carries time_ns (kcat prints header values as C strings, so not its bytes:
            // the pcapng below carries them).
            let messages = try Self.kcatJSON(broker: broker.address, topic: "pcap")
            #expect(messages.count == records.count)
            #expect(messages.allSatisfy { $0.headers.map(\.0) == ["time_ns"] })

            // consume, pcap: the key is the record's µs.
            let pcap = directory.appendingPathComponent("out.pcap").path
            let file = try EndToEnd.Consume.consumePcap(broker, to: pcap)
            #expect(file.records.map(\.micros) == records.map(\.micros))

            // consume, pcapng: ns timestamps that tcpdump reads back at nanosecond precision.
            let pcapng = directory.appendingPathComponent("out.pcapng").path
            let consumed = try Harness.run(
                Harness.binary,
                ["consume", "-b", broker.address, "--format", "pcapng", "-o", pcapng]
            )
            #expect(consumed.status == 0, "\(consumed.stderr)")
            let shown = try Harness.run(
                "/usr/bin/env",
                ["tcpdump", "-r", pcapng, "--time-stamp-precision=nano", "-tt", "-n", "-q"]
            )
            #expect(shown.status == 0, "\(shown.stderr)")
            let times = shown.stdout.split(separator: "\n").map { line in
                line.split(separator: " ").first.map(String.init) ?? ""
            }
            #expect(times.count == records.count)
            for (time, record) in zip(times, records) {
                let parts = time.split(separator: ".")
                #expect(parts.count == 2 && parts[1].count == 9, "\(time)")
                guard parts.count == 2, let seconds = UInt64(parts[0]), let fraction = UInt64(parts[1]) else {
                    continue
                }
                #expect(seconds * 1_000_000_000 + fraction == record.micros * 1000, "\(time)")
            }
            // The interface block says ns: if_tsresol (option 9) is 9. (net_pcap's times are whole µs, so the
            // values alone would read the same from a µs file.)
            #expect(try Self.timestampResolutions(pcapng) == [9])
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
