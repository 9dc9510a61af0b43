import FastcapaKafka
import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

/// Runs the built `fastcapa` binary and the tools around it as child processes:
/// `rte_eal_init` works once per process, so every capture runs in its own.
enum Harness {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["FASTCAPA_BINARY"] { return path }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [testBinary, testBinary.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("fastcapa").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return TestFiles.packageRoot.appendingPathComponent(".build/debug/fastcapa").path
    }

    /// EAL arguments for a probe without hugepages or PCI, on `lcores` lcores
    /// spread over this machine's cores; `coScheduled`: lcores 1 and 2 (the
    /// first queue's receive and transmit lcores) on one CPU.
    static func eal(lcores: Int, vdevs: [String], coScheduled: Bool = false) -> [String] {
        let cores = max(ProcessInfo.processInfo.activeProcessorCount, 1)
        let mapping = (0..<lcores).map { "\($0)@\((coScheduled && $0 == 2 ? 1 : $0) % cores)" }.joined(separator: ",")
        return ["--no-huge", "--no-pci", "-m", "512", "--lcores=\(mapping)", "--log-level=lib.eal:warning"]
            + vdevs.map { "--vdev=\($0)" }
    }

    struct Result {
        var pid: Int32
        var status: Int32
        var signaled: Bool
        var stdout: String
        var stderr: String

        /// The probe's final accounting (its `accounting-json:` line).
        var accounting: [String: Int] {
            guard let line = stdout.split(separator: "\n").last(where: { $0.hasPrefix("accounting-json: ") }),
                let data = line.dropFirst("accounting-json: ".count).data(using: .utf8),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { return [:] }
            return object.compactMapValues { $0 as? Int }
        }

        /// An array field of the accounting (per queue, per worker).
        func accountingList(_ name: String) -> [Int] {
            guard let line = stdout.split(separator: "\n").last(where: { $0.hasPrefix("accounting-json: ") }),
                let data = line.dropFirst("accounting-json: ".count).data(using: .utf8),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { return [] }
            return object[name] as? [Int] ?? []
        }

        /// This run's DPDK runtime folder is gone.
        var runtimeFolderRemoved: Bool { !FileManager.default.fileExists(atPath: "/var/run/dpdk/fastcapa-\(pid)") }

        var balanced: Bool { stdout.contains("\"balanced\":true") }
    }

    /// A running child process with captured output.
    final class Child: @unchecked Sendable {
        let process = Process()
        private let out = Pipe()
        private let err = Pipe()
        private let input: Pipe?
        private var outData = Data()
        private var errData = Data()
        private let lock = NSLock()

        init(_ executable: String, _ arguments: [String], interactive: Bool = false) throws {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.standardOutput = out
            process.standardError = err
            input = interactive ? Pipe() : nil
            process.standardInput = input ?? FileHandle.nullDevice
            out.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                self?.lock.withLock { self?.outData.append(data) }
            }
            err.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                self?.lock.withLock { self?.errData.append(data) }
            }
            // Children start with no signal blocked, as from a shell: the test
            // runner's threads block SIGTERM and SIGINT, and a child inherits that.
            var none = sigset_t()
            var runner = sigset_t()
            sigemptyset(&none)
            pthread_sigmask(SIG_SETMASK, &none, &runner)
            defer { pthread_sigmask(SIG_SETMASK, &runner, nil) }
            try process.run()
        }

        var stdout: String { lock.withLock { String(decoding: outData, as: UTF8.self) } }
        var stderr: String { lock.withLock { String(decoding: errData, as: UTF8.self) } }

        func signal(_ number: Int32) { kill(process.processIdentifier, number) }

        /// Writes a line to the child's standard input (interactive children only).
        func send(_ line: String) {
            input?.fileHandleForWriting.write(Data((line + "\n").utf8))
        }

        /// Waits for the child to exit, killing it after `timeout` seconds.
        func wait(timeout: Double) -> Result {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            process.waitUntilExit()
            usleep(50_000)  // let the readers drain the pipes
            out.fileHandleForReading.readabilityHandler = nil
            err.fileHandleForReading.readabilityHandler = nil
            let restOut = out.fileHandleForReading.readDataToEndOfFile()
            let restErr = err.fileHandleForReading.readDataToEndOfFile()
            lock.withLock {
                outData.append(restOut)
                errData.append(restErr)
            }
            return Result(
                pid: process.processIdentifier,
                status: process.terminationStatus,
                signaled: process.terminationReason == .uncaughtSignal,
                stdout: stdout,
                stderr: stderr
            )
        }

        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
    }

    /// Compiles a library of `Tests/FastcapaEndToEndTests/Support/` to preload
    /// into the probe (LD_PRELOAD); returns its path.
    static func compilePreload(_ name: String) throws -> String {
        try compile(name, as: "\(name).so", ["-shared", "-fPIC", "-ldl", "-lpthread"])
    }

    /// Compiles a helper program of `Tests/FastcapaEndToEndTests/Support/`; returns its path.
    static func compileTool(_ name: String, libraries: [String]) throws -> String {
        try compile(name, as: name, libraries)
    }

    private static func compile(_ name: String, as output: String, _ flags: [String]) throws -> String {
        let path = TestFiles.temporaryDirectory().appendingPathComponent(output).path
        let source = TestFiles.packageRoot.appendingPathComponent("Tests/FastcapaEndToEndTests/Support/\(name).c").path
        let compiled = try run("/usr/bin/env", ["cc", "-O2", "-o", path, source] + flags)
        guard compiled.status == 0 else { throw HarnessError("cannot compile \(name).c: \(compiled.stderr)") }
        return path
    }

    /// Runs a command to completion.
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 120) throws -> Result {
        try Child(executable, arguments).wait(timeout: timeout)
    }

    /// Runs the probe: `fastcapa EAL -- APP`.
    static func probe(eal: [String], _ application: [String], timeout: Double = 120) throws -> Result {
        try run(binary, eal + ["--"] + application, timeout: timeout)
    }

    /// Starts the probe, lets it capture for `seconds`, stops it with SIGTERM
    /// and waits for its accounting. `wrapper` runs it under `env`, `ip netns exec`...
    static func probe(
        for seconds: UInt32,
        eal: [String],
        _ application: [String],
        wrapper: [String] = []
    ) throws -> Result {
        let arguments = eal + ["--"] + application
        let child =
            wrapper.isEmpty
            ? try Child(binary, arguments)
            : try Child("/usr/bin/env", wrapper + [binary] + arguments)
        sleep(seconds)
        child.signal(SIGTERM)
        return child.wait(timeout: 60)
    }

    /// A broker in its own process (`fastcapa broker`), so that an independent
    /// consumer can read what the probe wrote after the probe has exited.
    final class Broker {
        let child: Child
        let address: String

        /// - Parameter control: accept fault-injection commands (`send`).
        init(
            partitions: Int = 1,
            topic: String = "pcap",
            brokers: Int = 1,
            control: Bool = false,
            wrapper: [String] = []
        ) throws {
            let directory = TestFiles.temporaryDirectory()
            let file = directory.appendingPathComponent("address").path
            let arguments =
                [
                    "broker", "--partitions", "\(partitions)", "--topic", topic, "--address-file", file,
                    "--brokers", "\(brokers)",
                ] + (control ? ["--control"] : [])
            child =
                wrapper.isEmpty
                ? try Child(Harness.binary, arguments, interactive: control)
                : try Child("/usr/bin/env", wrapper + [Harness.binary] + arguments)
            let deadline = Date().addingTimeInterval(15)
            var address = ""
            while address.isEmpty && Date() < deadline {
                address =
                    (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(
                        in: .whitespacesAndNewlines
                    ) ?? ""
                if address.isEmpty { usleep(20_000) }
            }
            self.address = address
        }

        /// A fault-injection command: down ID, up ID, rtt ID MS, produce-errors NAME...
        func send(_ command: String) { child.send(command) }

        func stop() {
            child.signal(SIGTERM)
            _ = child.wait(timeout: 10)
        }

        deinit { stop() }
    }

    /// A message as an independent consumer (kcat) read it.
    struct Message: Hashable {
        var partition: Int
        var key: [UInt8]?
        var value: [UInt8]
        var micros: UInt64? { key.flatMap(MessageContract.micros(key:)) }
    }

    /// Reads a whole topic with kcat, not with fastcapa's own code.
    static func kcatRead(broker: String, topic: String = "pcap", wrapper: [String] = []) throws -> [Message] {
        let directory = TestFiles.temporaryDirectory()
        let output = directory.appendingPathComponent("messages.bin").path
        let kcat = [
            "kcat", "-C", "-b", broker, "-t", topic, "-o", "beginning", "-e", "-q", "-D", "",
            "-f", "%p:%K:%S:%k%s", "-o", "beginning",
        ]
        let shell = (wrapper + ["sh", "-c", kcat.map { "'\($0)'" }.joined(separator: " ") + " > '\(output)'"])
        let result = try run("/usr/bin/env", shell, timeout: 120)
        guard result.status == 0 else {
            throw HarnessError("kcat failed (\(result.status)): \(result.stderr)")
        }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
        return try parseKcat(bytes)
    }

    /// The decimal number of kcat's output at `index`, up to the next `:` (passed).
    static func kcatNumber(_ bytes: [UInt8], _ index: inout Int) throws -> Int {
        var text = ""
        while index < bytes.count, bytes[index] != UInt8(ascii: ":") {
            text.append(Character(UnicodeScalar(bytes[index])))
            index += 1
        }
        index += 1
        guard let value = Int(text) else { throw HarnessError("bad kcat output near byte \(index): '\(text)'") }
        return value
    }

    /// Parses kcat's `%p:%K:%S:%k%s` records (lengths are -1 for null).
    static func parseKcat(_ bytes: [UInt8]) throws -> [Message] {
        var messages: [Message] = []
        var index = 0
        func number() throws -> Int { try kcatNumber(bytes, &index) }
        while index < bytes.count {
            let partition = try number()
            let keyLength = try number()
            let valueLength = try number()
            let key: [UInt8]? = keyLength < 0 ? nil : Array(bytes[index..<index + keyLength])
            index += max(keyLength, 0)
            let value = Array(bytes[index..<index + max(valueLength, 0)])
            index += max(valueLength, 0)
            messages.append(Message(partition: partition, key: key, value: value))
        }
        return messages
    }

    /// Records a test issue when `delivered` and `expected` differ: their counts, or the first record
    /// that differs, each side described (`oracle` names the expected side).
    static func expectSame<Record: Equatable & CustomStringConvertible>(
        _ delivered: [Record],
        _ expected: [Record],
        _ name: String,
        oracle: String
    ) {
        #expect(
            delivered.count == expected.count,
            "\(name): \(delivered.count) delivered, \(oracle) kept \(expected.count)"
        )
        if let first = zip(delivered, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            Issue.record("\(name): record \(first) differs: probe \(delivered[first]), \(oracle) \(expected[first])")
        }
    }

    static func writePcap(_ records: [PcapRecord], to directory: URL, name: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(PcapFile(records: records).bytes()).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// How many messages a topic holds: the sum of its partitions' high
    /// watermarks, read with kcat (the mock broker starts offsets at 0).
    static func kcatCount(broker: String, topic: String = "pcap", partitions: Int, wrapper: [String] = []) throws -> Int
    {
        try kcatCounts(broker: broker, topic: topic, partitions: partitions, wrapper: wrapper).reduce(0, +)
    }

    /// How many messages each partition holds.
    static func kcatCounts(
        broker: String,
        topic: String = "pcap",
        partitions: Int,
        wrapper: [String] = []
    ) throws -> [Int] {
        var counts: [Int] = []
        for partition in 0..<partitions {
            var total = 0
            let arguments =
                wrapper + [
                    "kcat", "-C", "-b", broker, "-t", topic, "-p", "\(partition)", "-o", "-1", "-e", "-q", "-f", "%o\n",
                ]
            let result = try run("/usr/bin/env", arguments, timeout: 60)
            guard result.status == 0 else { throw HarnessError("kcat failed: \(result.stderr)") }
            if let last = result.stdout.split(separator: "\n").last, let offset = Int(last) {
                total += offset + 1
            }
            counts.append(total)
        }
        return counts
    }
}

extension Harness {
    /// A network namespace of its own holding a veth pair: `fcA`, the probe's
    /// end, and `fcB`, where tcpreplay sends. IPv6 is off inside, so the
    /// kernel's own neighbour discovery stays off the wire. Deleted on release.
    final class VethNamespace {
        let name = "fcap\(UInt32.random(in: 0...999_999))"
        /// The probe's end.
        let probeEnd = "fcA"
        /// Where frames are sent in.
        let senderEnd = "fcB"
        /// `ip netns exec NAME`: runs a command inside.
        var wrapper: [String] { ["ip", "netns", "exec", name] }

        init(mtu: Int = 1500) throws {
            try Self.must(["ip", "netns", "add", name])
            do {
                try Self.must(["ip", "-n", name, "link", "add", probeEnd, "type", "veth", "peer", "name", senderEnd])
                try run([
                    "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                ])
                for link in [probeEnd, senderEnd] {
                    try Self.must(["ip", "-n", name, "link", "set", link, "mtu", "\(mtu)"])
                }
                for link in ["lo", probeEnd, senderEnd] {
                    try Self.must(["ip", "-n", name, "link", "set", link, "up"])
                }
            } catch {
                _ = try? Harness.run("/usr/bin/env", ["ip", "netns", "del", name], timeout: 30)
                throw error
            }
        }

        deinit { _ = try? Harness.run("/usr/bin/env", ["ip", "netns", "del", name], timeout: 30) }

        /// Runs a command inside the namespace; it must succeed.
        func run(_ arguments: [String]) throws { try Self.must(wrapper + arguments) }

        /// Replays a capture into the sender's end at `pps` packets per second (0: as fast as possible).
        func replay(_ file: String, pps: Int) throws -> Result {
            let rate = pps > 0 ? ["--pps", "\(pps)"] : ["--topspeed"]
            return try Harness.run("/usr/bin/env", wrapper + ["tcpreplay", "-q", "-i", senderEnd] + rate + [file])
        }

        private static func must(_ arguments: [String]) throws {
            let result = try Harness.run("/usr/bin/env", arguments, timeout: 30)
            guard result.status == 0 else {
                throw HarnessError("\(arguments.joined(separator: " ")): \(result.stderr)")
            }
        }
    }

    /// tcpdump writing what an interface hands a packet socket to a file: the oracle of a live capture.
    final class Tcpdump {
        let child: Child
        let file: String

        /// Starts tcpdump on `interface` inside `namespace` and waits until it listens. A 256 MiB buffer
        /// (`-B`), so that tcpdump itself drops nothing.
        init(_ namespace: VethNamespace, interface: String) throws {
            file = TestFiles.temporaryDirectory().appendingPathComponent("oracle.pcap").path
            child = try Child(
                "/usr/bin/env",
                namespace.wrapper + ["tcpdump", "-i", interface, "-w", file, "-B", "262144", "-s", "0", "-U", "-n"]
            )
            let deadline = Date().addingTimeInterval(15)
            while !child.stderr.contains("listening on") && Date() < deadline { usleep(20_000) }
            guard child.stderr.contains("listening on") else {
                throw HarnessError("tcpdump did not start: \(child.stderr)")
            }
        }

        /// Stops tcpdump and reads what it captured; fails if tcpdump dropped any frame.
        func stop() throws -> [PcapRecord] {
            child.signal(SIGTERM)
            let result = child.wait(timeout: 30)
            guard result.stderr.split(separator: "\n").contains("0 packets dropped by kernel") else {
                throw HarnessError("tcpdump dropped frames, so it cannot be the oracle: \(result.stderr)")
            }
            return try PcapFile(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))).records
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
