import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// `--record-time`: with `capture`, every message's Kafka timestamp (CreateTime) is its capture time in
    /// ms, as kcat reads it, so that the broker's time index finds a window of the capture (kcat's
    /// `-o s@`, `consume --since`'s first guess); with `send`, it is when the probe sent it.
    @Suite struct RecordTime {
        /// A message as kcat's `%T` and `%k` show it: its timestamp (ms) and its key's capture time (µs).
        struct Stamped: Equatable, CustomStringConvertible {
            var millis: Int64
            var micros: UInt64
            var description: String { "timestamp \(millis) key \(micros)" }
        }

        /// Reads a topic with kcat (`-f '%T:%K:%k'`: timestamp, key length, key; every key is 8 bytes), from `start` (`beginning`, `s@MS`)
        /// to its end or to `end` (`e@MS`).
        static func kcatStamps(
            broker: String,
            topic: String = "pcap",
            start: String = "beginning",
            end: String? = nil
        ) throws -> [Stamped] {
            let output = TestFiles.temporaryDirectory().appendingPathComponent("stamps.bin").path
            let kcat =
                ["kcat", "-C", "-b", broker, "-t", topic, "-o", start] + (end.map { ["-o", $0] } ?? [])
                + ["-e", "-q", "-D", "", "-f", "%T:%K:%k"]
            let shell = ["sh", "-c", kcat.map { "'\($0)'" }.joined(separator: " ") + " > '\(output)'"]
            let result = try Harness.run("/usr/bin/env", shell, timeout: 60)
            guard result.status == 0 else { throw HarnessError("kcat failed (\(result.status)): \(result.stderr)") }
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
            var stamps: [Stamped] = []
            var index = 0
            func number() throws -> Int64 { Int64(try Harness.kcatNumber(bytes, &index)) }
            while index < bytes.count {
                let millis = try number()
                let length = try number()
                guard length == 8, index + 8 <= bytes.count else { throw HarnessError("a key of \(length) bytes") }
                let micros = bytes[index..<index + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                index += 8
                stamps.append(Stamped(millis: millis, micros: micros))
            }
            return stamps
        }

        static func capture(
            _ records: [PcapRecord],
            into address: String,
            recordTime: String,
            in directory: URL
        ) throws -> Harness.Result {
            let input = try Harness.writePcap(records, to: directory, name: "input-\(recordTime).pcap")
            let captured = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                [
                    "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "-X",
                    "bootstrap.servers=\(address)", "--record-time", recordTime,
                ]
            )
            #expect(captured.status == 0, "\(captured.stderr.suffix(2000))")
            #expect(captured.balanced)
            #expect(captured.accounting["delivered"] == records.count, "\(captured.stdout)")
            #expect(captured.stderr.contains("record_time=\(recordTime) ("), "the start line says it")
            return captured
        }

        static let records = SyntheticCaptures.protocolMix(count: 600, seed: 28)

        /// The mock cluster: with `capture` every timestamp is the key ÷ 1000 and the pcap record's time
        /// ÷ 1000; with `send` it is the time of the run; `consume --since/--until` finds the same window
        /// in both (the mock has no time index: by keys, and says so).
        @Test func captureStampsTheCaptureTimeAndSendTheSendTime() throws {
            let directory = TestFiles.temporaryDirectory()
            let expected = Self.records.map(\.micros).sorted()

            let captureBroker = try Harness.Broker(partitions: 2)
            _ = try Self.capture(Self.records, into: captureBroker.address, recordTime: "capture", in: directory)
            let stamped = try Self.kcatStamps(broker: captureBroker.address)
            #expect(stamped.map(\.micros).sorted() == expected)
            for message in stamped {
                #expect(message.millis == Int64(message.micros / 1000), "\(message)")
            }
            #expect(stamped.map(\.millis).sorted() == expected.map { Int64($0 / 1000) })

            let sendBroker = try Harness.Broker(partitions: 2)
            let before = Int64(Date().timeIntervalSince1970 * 1000)
            _ = try Self.capture(Self.records, into: sendBroker.address, recordTime: "send", in: directory)
            let after = Int64(Date().timeIntervalSince1970 * 1000)
            let sent = try Self.kcatStamps(broker: sendBroker.address)
            #expect(sent.map(\.micros).sorted() == expected)
            for message in sent {
                #expect((before...after).contains(message.millis), "\(message): sent in [\(before), \(after)]")
            }

            // consume --since/--until, on each: the records of the window, found by keys (the mock cluster
            // answers offsets-for-times with no offset).
            let (since, until) = (expected[200], expected[400])
            let window = ["--since", "\(Double(since) / 1e6)", "--until", "\(Double(until) / 1e6)", "--slack", "0.005"]
            for (broker, name) in [(captureBroker, "capture"), (sendBroker, "send")] {
                let read = try EndToEnd.Consume.consumePcap(
                    broker,
                    window,
                    to: directory.appendingPathComponent("window-\(name).pcap").path
                )
                #expect(read.records.map(\.micros) == Array(expected[200..<400]), "\(name)")
                #expect(read.stderr.contains("the broker's time index gave no offset"), "\(name): \(read.stderr)")
                // Sought past the start (capture spreads messages one by one; send's batches may leave a
                // partition's window at its first offset).
                #expect(Self.seekStarts(read.stderr).reduce(0, +) > 150, "\(name): \(read.stderr)")
                print("record time: \(name), mock cluster: \(Self.seekLine(read.stderr))")
            }
        }

        /// noida-db, a broker with a time index: kcat's `-o s@ -o e@` (offsets-for-times) reads exactly the
        /// records captured in that window, and `consume --since/--until` takes the index's guess, checks it
        /// by the keys and writes the same window; a topic written with `send` is sought by keys.
        @Test(.noida) func theBrokersTimeIndexFindsAWindowOfTheCapture() throws {
            let broker = try NoidaBroker()
            defer { broker.stop() }
            let createTopic = try Harness.compileTool("create_topic", libraries: ["-lrdkafka"])
            for topic in ["pcap", "sent"] {
                let created = try Harness.run(createTopic, [broker.address, topic, "2"], timeout: 30)
                #expect(created.status == 0, "\(created.stderr)")
            }
            let directory = TestFiles.temporaryDirectory()
            // Re-timed to the last minute: the broker's retention (7 days by record time) would delete 2024's at once.
            let shift = UInt64(Date().timeIntervalSince1970 * 1e6) - 60_000_000 - Self.records[0].micros
            let records = Self.records.map { record in
                var record = record
                record.micros += shift
                return record
            }
            _ = try Self.capture(records, into: broker.address, recordTime: "capture", in: directory)
            let expected = records.map(\.micros).sorted()
            let all = try Self.kcatStamps(broker: broker.address)
            #expect(all.map(\.micros).sorted() == expected)
            #expect(all.allSatisfy { $0.millis == Int64($0.micros / 1000) })

            // A window in ms: what kcat reads through offsets-for-times is what the capture holds in it.
            let (from, to) = (Int64(expected[150] / 1000), Int64(expected[450] / 1000))
            let windowed = try Self.kcatStamps(broker: broker.address, start: "s@\(from)", end: "e@\(to)")
            let inWindow = expected.filter { (from..<to).contains(Int64($0 / 1000)) }
            #expect(windowed.map(\.micros).sorted() == inWindow, "kcat -o s@\(from) -o e@\(to)")

            // consume: the time index's guess, checked by the keys.
            let (since, until) = (expected[200], expected[400])
            let options = [
                "--since", "\(Double(since) / 1e6)", "--until", "\(Double(until) / 1e6)", "--slack", "0.005",
            ]
            let read = try EndToEnd.Consume.consumePcap(
                address: broker.address,
                options,
                to: directory.appendingPathComponent("window.pcap").path
            )
            #expect(read.records.map(\.micros) == Array(expected[200..<400]))
            #expect(read.stderr.contains("first guess from the broker's time index"), "\(read.stderr)")
            #expect(read.stderr.contains(" in 1 rounds"), "\(read.stderr)")
            #expect(Self.seekStarts(read.stderr).allSatisfy { $0 > 50 }, "\(read.stderr)")
            // The same topic by keys alone: the time index not asked, the same start offsets and records.
            let byKeys = try EndToEnd.Consume.consumePcap(
                address: broker.address,
                options + ["--no-time-index"],
                to: directory.appendingPathComponent("keys-window.pcap").path
            )
            #expect(byKeys.records.map(\.micros) == Array(expected[200..<400]))
            #expect(byKeys.stderr.contains("by keys alone (--no-time-index)"), "\(byKeys.stderr)")
            #expect(Self.seekStarts(byKeys.stderr) == Self.seekStarts(read.stderr), "\(byKeys.stderr)")

            // The same records written with send times, to another topic: sought by keys, the same window.
            let input = try Harness.writePcap(records, to: directory, name: "sent.pcap")
            let sent = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                [
                    "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "-X",
                    "bootstrap.servers=\(broker.address)", "--record-time", "send", "--topic", "sent",
                ]
            )
            #expect(sent.status == 0, "\(sent.stderr.suffix(2000))")
            let bySend = try EndToEnd.Consume.consumePcap(
                address: broker.address,
                options + ["--topic", "sent"],
                to: directory.appendingPathComponent("sent-window.pcap").path
            )
            #expect(bySend.records.map(\.micros) == Array(expected[200..<400]))
            #expect(bySend.stderr.contains("record times are not capture times"), "\(bySend.stderr)")
            // Sought past the start in all (send's batches may leave one partition's window at its first offset).
            #expect(Self.seekStarts(bySend.stderr).reduce(0, +) > 150, "\(bySend.stderr)")
            print("record time: capture, noida-db: \(Self.seekLine(read.stderr))")
            print("record time: capture, noida-db, --no-time-index: \(Self.seekLine(byKeys.stderr))")
            print("record time: send, noida-db: \(Self.seekLine(bySend.stderr))")
        }

        /// The seek's part of consume's closing line.
        static func seekLine(_ stderr: String) -> String {
            stderr.firstMatch(of: /seek: [^\n]*/).map { String($0.0) } ?? "no seek"
        }

        /// The offsets each partition's read started at, from consume's closing line.
        static func seekStarts(_ stderr: String) -> [Int] {
            guard let match = stderr.firstMatch(of: /started at offsets ([0-9: ]+)/) else { return [] }
            return match.1.split(separator: " ").compactMap { $0.split(separator: ":").last.flatMap { Int($0) } }
        }
    }
}
