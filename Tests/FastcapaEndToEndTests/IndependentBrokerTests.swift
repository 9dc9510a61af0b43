import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

extension EndToEnd {
    /// Every other test talks to librdkafka's mock cluster: librdkafka against itself. noida-db (PyPI, a
    /// Kafka-protocol broker written in Rust, `Scripts/noida` installs a pinned version) is an independent
    /// implementation: a capture into it must come back record for record, through kcat and through
    /// `consume`. A few thousand records: noida-db is young, this checks interoperability, not load.
    @Suite struct IndependentBroker {
        /// The edge cases (every size up to 65,535 bytes, a truncated record), re-timed to the second before
        /// the protocol mix so that keys only go forward, then a mix of 3,000.
        static var corpus: [PcapRecord] {
            let start = SyntheticCaptures.Times.june2024 - 1_000_000
            let edges = SyntheticCaptures.edgeCases.enumerated().map { index, record in
                var record = record
                record.micros = start + UInt64(index) * 1000
                return record
            }
            return edges + SyntheticCaptures.protocolMix(count: 3000, seed: 24)
        }

        @Test(.noida) func aCaptureIntoNoidaComesBackRecordForRecord() throws {
            let broker = try NoidaBroker()
            defer { broker.stop() }
            // Four partitions, so that the probe spreads batches over them and consume merges them back.
            let createTopic = try Harness.compileTool("create_topic", libraries: ["-lrdkafka"])
            let created = try Harness.run(createTopic, [broker.address, "pcap", "4"], timeout: 30)
            #expect(created.status == 0, "\(created.stderr)")
            let records = Self.corpus
            let directory = TestFiles.temporaryDirectory()
            let input = try Harness.writePcap(records, to: directory, name: "input.pcap")
            // Idempotent and lz4-compressed: the producer's InitProducerId and compressed batches, too.
            let captured = try Harness.probe(
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(input)"]),
                [
                    "--idle-exit", "2", "--stats-interval", "0", "--ring-full", "wait", "-b", "8", "-X",
                    "bootstrap.servers=\(broker.address)", "-X", "enable.idempotence=true", "-X",
                    "compression.codec=lz4",
                ]
            )
            #expect(captured.status == 0, "\(captured.stderr.suffix(2000))")
            #expect(captured.balanced, "\(captured.stdout)")
            #expect(captured.accounting["delivered"] == records.count, "\(captured.stdout)")

            // kcat, not fastcapa's reader: every message, its key the capture time, its value the frame, each
            // partition in capture-time order; the high watermarks count them all.
            let messages = try Harness.kcatRead(broker: broker.address)
            #expect(messages.count == records.count)
            let byTime = messages.sorted { ($0.micros ?? 0) < ($1.micros ?? 0) }
            #expect(byTime.map(\.value) == records.map(\.data))
            #expect(byTime.map(\.micros) == records.map { Optional($0.micros) })
            for partition in 0..<4 {
                let times = messages.filter { $0.partition == partition }.compactMap(\.micros)
                #expect(times == times.sorted(), "partition \(partition) in capture-time order")
            }
            let counts = try Harness.kcatCounts(broker: broker.address, partitions: 4)
            #expect(counts.reduce(0, +) == records.count && counts.allSatisfy { $0 > 300 }, "\(counts)")

            // consume: the whole topic, merged back in capture-time order; then a window with a filter, which
            // is what tcpdump keeps of the same records in that window, each partition sought past its beginning.
            let all = try EndToEnd.Consume.consumePcap(
                address: broker.address,
                to: directory.appendingPathComponent("all.pcap").path
            )
            #expect(all.records.map(\.micros) == records.map(\.micros))
            #expect(all.records.map(\.data) == records.map(\.data))

            let times = records.map(\.micros)
            let (since, until) = (times[1500], times[2300])
            let expression = "udp or arp or icmp or icmp6"
            let expected = try EndToEnd.Consume.tcpdumpKeeps(input, expression, from: since, to: until, in: directory)
            #expect(expected.count > 50)
            let window = try EndToEnd.Consume.consumePcap(
                address: broker.address,
                [
                    "--since", "\(Double(since) / 1e6)", "--until", "\(Double(until) / 1e6)", "--filter", expression,
                    "--slack", "0.5",
                ],
                to: directory.appendingPathComponent("window.pcap").path
            )
            #expect(window.records.map(\.micros) == expected.map(\.micros))
            #expect(window.records.map(\.data) == expected.map(\.data))
            let starts = window.stderr.firstMatch(of: /started at offsets ([0-9: ]+)/).map {
                $0.1.split(separator: " ").compactMap { $0.split(separator: ":").last.flatMap { Int($0) } }
            }
            #expect(starts?.count == 4 && starts!.allSatisfy { $0 > 200 }, "\(window.stderr)")
            print(
                "independent broker: \(broker.version): \(records.count) records in 4 partitions \(counts) back whole "
                    + "through kcat and consume; a window of \(expected.count) filtered records sought from offsets "
                    + "\(starts ?? [])"
            )
        }
    }
}

/// noida-db's Kafka service alone, on 127.0.0.1 and a free port, with a data folder of its own.
final class NoidaBroker {
    let child: Harness.Child
    let address: String
    /// `noida-db 0.2.3`
    var version: String { Self.versionLine ?? "noida-db" }

    /// `FASTCAPA_NOIDA` (Scripts/test sets it from `Scripts/noida`), or where `Scripts/noida` installs it.
    static let binary: String? = {
        if let path = ProcessInfo.processInfo.environment["FASTCAPA_NOIDA"], !path.isEmpty { return path }
        let lib = TestFiles.packageRoot.appendingPathComponent(".build/noida-venv/lib")
        let pythons = (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? []
        return pythons.map { lib.appendingPathComponent("\($0)/site-packages/noida_db/noida-db").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// What `noida-db version` prints, when it runs.
    static let versionLine: String? = binary.flatMap { binary in
        guard let version = try? Harness.run(binary, ["version"], timeout: 30), version.status == 0 else { return nil }
        let line = version.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return line.hasPrefix("noida-db ") ? line : nil
    }

    /// Why the test cannot run here, or nil.
    static let problem: String? = {
        guard let binary else {
            return "noida-db is not installed: Scripts/noida installs it into .build/noida-venv (Scripts/test "
                + "runs it and passes its path as FASTCAPA_NOIDA)"
        }
        return versionLine == nil ? "noida-db at \(binary) does not run here ('noida-db version' failed)" : nil
    }()

    init() throws {
        if let problem = Self.problem { throw HarnessError("CI needs noida-db, but \(problem)") }
        let port = try Self.freePort()
        let data = TestFiles.temporaryDirectory().appendingPathComponent("noida-data").path
        child = try Harness.Child(
            Self.binary!,
            ["start", "--only", "kafka", "--host", "127.0.0.1", "--kafka-port", "\(port)", "--data-dir", data]
        )
        address = "127.0.0.1:\(port)"
        let deadline = Date().addingTimeInterval(15)
        while !Self.accepts(port: port) {
            guard child.process.isRunning, Date() < deadline else {
                child.signal(SIGKILL)
                throw HarnessError("noida-db did not listen on \(address): \(child.stdout) \(child.stderr)")
            }
            usleep(50_000)
        }
    }

    func stop() {
        child.signal(SIGINT)  // its Ctrl-C: saves and exits
        _ = child.wait(timeout: 10)
    }

    deinit { stop() }

    /// A port free on 127.0.0.1 now (the kernel's pick for port 0).
    static func freePort() throws -> UInt16 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw HarnessError("socket: \(errno)") }
        defer { close(socket) }
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0
            }
        }
        guard bound else { throw HarnessError("no free port on 127.0.0.1: \(errno)") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Something listens on 127.0.0.1:port.
    static func accepts(port: UInt16) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = Self.loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs the noida-db test where noida-db runs, and under CI, which must have it (Scripts/test installs it
    /// from PyPI): there a missing noida-db fails rather than skips, or the only check against a broker that
    /// is not librdkafka's own would silently stop running.
    static var noida: Self {
        .enabled(
            if: NoidaBroker.problem == nil || SharedCorpus.isRequired,
            Comment(rawValue: NoidaBroker.problem ?? "")
        )
    }
}
