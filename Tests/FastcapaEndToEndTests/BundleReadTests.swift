import CRdKafka
import FastcapaKafka
import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// Bundles (`pcap-records-v1`, MessageFormat.md, "Bundles") read back by
    /// `consume` and by the kcat recipe: a topic written here with bundles of
    /// 1, 7 and 256 packets and single-packet messages mixed, in two partitions
    /// whose packets interleave in time, comes back record for record.
    @Suite struct BundleRead {
        /// The module's contract (`EndToEnd.MessageContract` is a suite).
        typealias Contract = FastcapaKafka.MessageContract

        /// Writes messages with the headers a test chooses (librdkafka's
        /// `rd_kafka_produceva`; kcat -P cannot give a binary key per message).
        final class TopicWriter {
            let handle: OpaquePointer

            init(address: String) throws {
                let conf = rd_kafka_conf_new()
                var reason = [CChar](repeating: 0, count: 256)
                for (key, value) in [("bootstrap.servers", address), ("linger.ms", "5"), ("log_level", "2")] {
                    guard rd_kafka_conf_set(conf, key, value, &reason, reason.count) == RD_KAFKA_CONF_OK else {
                        throw PcapError(description: Self.text(reason))
                    }
                }
                guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &reason, reason.count) else {
                    throw PcapError(description: Self.text(reason))
                }
                self.handle = handle
            }

            deinit { rd_kafka_destroy(handle) }

            /// librdkafka's message in `reason`, up to its terminator.
            static func text(_ reason: [CChar]) -> String {
                String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }

            func produce(
                topic: String,
                partition: Int32,
                micros: UInt64,
                value: [UInt8],
                headers: [(String, [UInt8])]
            ) throws {
                let list = rd_kafka_headers_new(headers.count)!
                for (name, bytes) in headers {
                    _ = bytes.withUnsafeBytes { rd_kafka_header_add(list, name, -1, $0.baseAddress, $0.count) }
                }
                let key = Contract.keyBytes(micros: micros)
                let topicName = strdup(topic)!
                defer { free(topicName) }
                let error = value.withUnsafeBytes { value in
                    key.withUnsafeBytes { key in
                        var fields = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 6)
                        fields[0].vtype = RD_KAFKA_VTYPE_TOPIC
                        fields[0].u.cstr = UnsafePointer(topicName)
                        fields[1].vtype = RD_KAFKA_VTYPE_PARTITION
                        fields[1].u.i32 = partition
                        fields[2].vtype = RD_KAFKA_VTYPE_VALUE
                        fields[2].u.mem = .init(
                            ptr: UnsafeMutableRawPointer(mutating: value.baseAddress),
                            size: value.count
                        )
                        fields[3].vtype = RD_KAFKA_VTYPE_KEY
                        fields[3].u.mem = .init(
                            ptr: UnsafeMutableRawPointer(mutating: key.baseAddress),
                            size: key.count
                        )
                        fields[4].vtype = RD_KAFKA_VTYPE_HEADERS
                        fields[4].u.headers = list
                        // The value lives only for this call: librdkafka copies it.
                        fields[5].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                        fields[5].u.i = RD_KAFKA_MSG_F_COPY
                        return rd_kafka_produceva(handle, fields, fields.count)
                    }
                }
                if let error {
                    let message = String(cString: rd_kafka_error_string(error))
                    rd_kafka_error_destroy(error)
                    rd_kafka_headers_destroy(list)
                    throw PcapError(description: "produce: \(message)")
                }
            }

            func flush() throws {
                guard rd_kafka_flush(handle, 20_000) == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw PcapError(description: "\(rd_kafka_outq_len(handle)) messages were not delivered")
                }
            }
        }

        /// Records of the edge cases and a protocol mix, restamped 1 ms apart, and a minute later after the
        /// first half (so that a seek past it skips messages): capture times all distinct, rising.
        static func records() -> [PcapRecord] {
            let base: UInt64 = 1_714_564_800_000_000
            let all = SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 700)
            return all.enumerated().map { index, record in
                var record = record
                record.micros = base + UInt64(index) * 1000 + (index >= all.count / 2 ? 60_000_000 : 0)
                return record
            }
        }

        /// Writes `records` into partitions 0 and 1 (even and odd ones: their bundles overlap in time) as
        /// messages of `sizes` packets in turn, 0 being a single-packet message (no marker).
        static func write(_ records: [PcapRecord], sizes: [Int], to broker: Harness.Broker) throws -> Int {
            let writer = try TopicWriter(address: broker.address)
            var messages = 0
            // A bundle spans at most its linger: none spans the minute between the halves.
            let halves = [records[..<(records.count / 2)], records[(records.count / 2)...]]
            for (partition, half) in [0, 1].flatMap({ partition in halves.map { (partition, $0) } }) {
                var rest = half.enumerated().filter { ($0.offset + half.startIndex) % 2 == partition }.map(\.element)[
                    ...
                ]
                var turn = 0
                while !rest.isEmpty {
                    let size = sizes[turn % sizes.count]
                    turn += 1
                    let packets = rest.prefix(max(size, 1))
                    rest = rest.dropFirst(packets.count)
                    let first = packets.first!
                    if size == 0 {
                        let cut = first.originalLength > first.data.count
                        let headers = cut ? [("orig_len", Array("\(first.originalLength)".utf8))] : []
                        try writer.produce(
                            topic: "pcap",
                            partition: Int32(partition),
                            micros: first.micros,
                            value: first.data,
                            headers: headers
                        )
                    } else {
                        let bundle = packets.map {
                            Contract.Bundle.Packet(
                                micros: $0.micros,
                                originalLength: Int($0.originalLength),
                                frame: $0.data
                            )
                        }
                        try writer.produce(
                            topic: "pcap",
                            partition: Int32(partition),
                            micros: first.micros,
                            value: Contract.Bundle.value(bundle),
                            headers: [
                                ("port", Array("0".utf8)),
                                (Contract.Bundle.formatHeader, Array(Contract.Bundle.format.utf8)),
                                (Contract.Bundle.countHeader, Array("\(bundle.count)".utf8)),
                            ]
                        )
                    }
                    messages += 1
                }
            }
            try writer.flush()
            return messages
        }

        static func expectSame(_ back: [PcapRecord], _ records: [PcapRecord], _ what: String) {
            #expect(back.count == records.count, "\(what)")
            #expect(back.map(\.micros) == records.map(\.micros), "\(what)")
            #expect(back.map(\.data) == records.map(\.data), "\(what)")
            #expect(back.map(\.originalLength) == records.map(\.originalLength), "\(what)")
        }

        @Test(arguments: [[1], [7], [256], [7, 0, 256, 1, 0, 0]])
        func bundlesAndSingleMessagesComeBackRecordForRecord(sizes: [Int]) throws {
            let records = Self.records()
            let broker = try Harness.Broker(partitions: 2)
            let messages = try Self.write(records, sizes: sizes, to: broker)
            let directory = TestFiles.temporaryDirectory()

            // Everything, merged across the partitions in capture-time order packet by packet.
            let all = try Consume.consumePcap(broker, to: directory.appendingPathComponent("all.pcap").path)
            Self.expectSame(all.records, records, "all, bundles of \(sizes)")
            if !sizes.contains(0) {
                #expect(
                    all.stderr.contains(
                        "consume: \(records.count) packets written of \(messages) messages read (\(messages) of them bundles of \(records.count) packets)"
                    ),
                    "\(all.stderr)"
                )
            }

            // A window whose ends fall inside bundles (the second half, after the seek), and a filter.
            let since = records[records.count / 2 + 101].micros
            let until = records[records.count - 150].micros
            let window = try Consume.consumePcap(
                broker,
                ["--since", "\(Double(since) / 1e6)", "--until", "\(Double(until) / 1e6)"],
                to: directory.appendingPathComponent("window.pcap").path
            )
            Self.expectSame(window.records, records.filter { $0.micros >= since && $0.micros < until }, "window")
            #expect(window.stderr.contains("seek:"), "\(window.stderr)")
            let udp = try Consume.consumePcap(
                broker,
                ["--filter", "udp"],
                to: directory.appendingPathComponent("udp.pcap").path
            )
            // What tcpdump's own filter keeps of the same records (it stops at a 0-byte record: none is UDP).
            let input = try Harness.writePcap(records.filter { !$0.data.isEmpty }, to: directory, name: "input.pcap")
            let reference = directory.appendingPathComponent("reference.pcap").path
            #expect(try Harness.run("/usr/bin/env", ["tcpdump", "-r", input, "-w", reference, "udp"]).status == 0)
            let filtered = try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: reference)))).records
            #expect(!filtered.isEmpty && filtered.count < records.count)
            Self.expectSame(udp.records, filtered, "udp")

            // pcapng, read by tshark: the same times and lengths.
            let pcapng = directory.appendingPathComponent("all.pcapng").path
            let written = try Harness.run(
                Harness.binary,
                ["consume", "-b", broker.address, "--format", "pcapng", "-o", pcapng]
            )
            #expect(written.status == 0, "\(written.stderr)")
            let fields = try Harness.run(
                "/usr/bin/env",
                [
                    "tshark", "-r", pcapng, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.cap_len", "-e",
                    "frame.len",
                ]
            )
            let lines = fields.stdout.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
            #expect(lines.count == records.count)
            for (line, record) in zip(lines, records) {
                let time = line[0].split(separator: ".")
                #expect(UInt64(time[0])! * 1_000_000 + UInt64(time[1].prefix(6))! == record.micros, "\(line)")
                #expect(Int(line[1]) == record.data.count && Int(line[2]) == Int(record.originalLength), "\(line)")
            }

            // The kcat recipe (MessageFormat.md): a partition's bundles as a pcap file tcpdump reads.
            if !sizes.contains(0) {
                let file = directory.appendingPathComponent("kcat.pcap").path
                // The partition without the 0-byte record (tcpdump stops at one).
                let number = records.firstIndex { $0.data.isEmpty }.map { 1 - $0 % 2 } ?? 1
                let recipe = try Self.kcatRecipe(broker: broker.address, partition: number, file: file)
                let made = try Harness.run("/bin/sh", ["-c", recipe])
                #expect(made.status == 0, "\(made.stderr)")
                let partition = records.enumerated().filter { $0.offset % 2 == number }.map(\.element)
                Self.expectSame(
                    try PcapFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))).records,
                    partition,
                    "kcat"
                )
                let tcpdump = try Harness.run("/usr/bin/env", ["tcpdump", "-r", file, "-nn", "-tt"])
                #expect(tcpdump.status == 0, "\(tcpdump.stderr)")
                #expect(partition.allSatisfy { !$0.data.isEmpty })
                let packets = tcpdump.stdout.split(separator: "\n").filter { $0.first?.isNumber == true }
                #expect(packets.count == partition.count, "\(tcpdump.stderr)")
            }
        }

        /// A bundle whose count header disagrees with its records is refused, naming where it lies.
        @Test func aMalformedBundleIsRefusedNamingItsOffset() throws {
            let broker = try Harness.Broker(partitions: 1)
            let writer = try TopicWriter(address: broker.address)
            let packet = Contract.Bundle.Packet(
                micros: 1_714_564_800_000_000,
                originalLength: 60,
                frame: [1, 2, 3]
            )
            try writer.produce(
                topic: "pcap",
                partition: 0,
                micros: packet.micros,
                value: Contract.Bundle.value([packet, packet]),
                headers: [
                    (Contract.Bundle.formatHeader, Array(Contract.Bundle.format.utf8)),
                    (Contract.Bundle.countHeader, Array("3".utf8)),
                ]
            )
            try writer.flush()
            let consumed = try Harness.run(Harness.binary, ["consume", "-b", broker.address])
            #expect(consumed.status != 0)
            #expect(
                consumed.stderr.contains(
                    "the bundle at partition 0 offset 0 of topic 'pcap' is malformed: its fastcapa.count header says 3 packets, its value holds 2 records"
                ),
                "\(consumed.stderr)"
            )
        }

        /// The recipe as MessageFormat.md gives it, for this broker and partition.
        static func kcatRecipe(broker: String, partition: Int, file: String) throws -> String {
            let document = try String(
                contentsOf: TestFiles.packageRoot.appendingPathComponent("Documentation/MessageFormat.md"),
                encoding: .utf8
            )
            let line = try #require(
                document.split(separator: "\n").first { $0.hasPrefix("(printf ") && $0.contains("kcat -C") }
            )
            return line.replacingOccurrences(of: "BROKER", with: broker)
                .replacingOccurrences(of: "PARTITION", with: "\(partition)")
                .replacingOccurrences(of: "TOPIC", with: "pcap")
                .replacingOccurrences(of: "partition.pcap", with: "'\(file)'")
        }
    }
}
