import FastcapaTestSupport
import Foundation
import Testing

extension EndToEnd {
    /// Bad input gets one clear message naming the problem and the fix, a
    /// non-zero exit, no signal death and no DPDK runtime files left behind.
    @Suite struct BadInput {
        static let eal = Harness.eal(lcores: 3, vdevs: ["net_null0"])

        struct Case: CustomTestStringConvertible, Sendable {
            var name: String
            var eal: [String]
            var application: [String]
            var status: Int32
            var mentions: [String]
            var testDescription: String { name }
        }

        static let cases: [Case] = [
            // A production unit refuses the embedded broker.
            Case(
                name: "require-broker with no broker configured",
                eal: eal,
                application: ["--require-broker"],
                status: 64,
                mentions: ["no Kafka broker is configured and require-broker is set", "-X bootstrap.servers=HOST:PORT"]
            ),
            Case(
                name: "ring size not a power of two",
                eal: eal,
                application: ["-x", "1000"],
                status: 64,
                mentions: ["ring size", "power of two"]
            ),
            Case(
                name: "receive burst too large",
                eal: eal,
                application: ["-b", "4096"],
                status: 64,
                mentions: ["receive burst", "1 to 1024"]
            ),
            Case(
                name: "zero transmit burst",
                eal: eal,
                application: ["-w", "0"],
                status: 64,
                mentions: ["transmit burst"]
            ),
            Case(name: "non-numeric queue count", eal: eal, application: ["-q", "two"], status: 64, mentions: ["two"]),
            Case(
                name: "unknown message header",
                eal: eal,
                application: ["--headers", "port,vlan"],
                status: 64,
                mentions: ["'vlan' is not a header", "port, queue, probe and time_ns"]
            ),
            Case(
                name: "a header named twice",
                eal: eal,
                application: ["--headers", "port,port"],
                status: 64,
                mentions: ["names a header twice"]
            ),
            Case(
                name: "probe id with a space",
                eal: eal,
                application: ["--probe-id", "tap 3"],
                status: 64,
                mentions: ["probe id", "printable ASCII"]
            ),
            Case(
                name: "topic invalid once {port} is replaced",
                eal: eal,
                application: ["-t", "pcap/{port}"],
                status: 64,
                mentions: ["gives 'pcap/0' for port 0", "{port} stands for the port's id"]
            ),
            Case(
                name: "port mask not hex",
                eal: eal,
                application: ["-p", "zz"],
                status: 64,
                mentions: ["port mask", "hex"]
            ),
            Case(
                name: "port mask naming no port",
                eal: eal,
                application: ["-p", "0x0"],
                status: 64,
                mentions: ["selects no port"]
            ),
            Case(
                name: "port mask naming a missing port",
                eal: eal,
                application: ["-p", "0x2"],
                status: 1,
                mentions: ["port 1", "does not exist", "0x1"]
            ),
            Case(
                name: "invalid topic",
                eal: eal,
                application: ["-t", "bad topic!"],
                status: 64,
                mentions: ["topic", "valid Kafka topic"]
            ),
            Case(name: "unknown option", eal: eal, application: ["--frobnicate"], status: 64, mentions: ["frobnicate"]),
            Case(name: "option missing its value", eal: eal, application: ["-x"], status: 64, mentions: ["-x"]),
            Case(
                name: "unknown librdkafka property",
                eal: eal,
                application: ["-X", "no.such.property=1"],
                status: 64,
                mentions: ["no.such.property", "-X"]
            ),
            Case(
                name: "invalid librdkafka value",
                eal: eal,
                application: ["-X", "linger.ms=soon"],
                status: 64,
                mentions: ["linger.ms"]
            ),
            // Each value is valid; librdkafka refuses them together when it builds the producer (a start failure, not a crash).
            Case(
                name: "librdkafka properties that conflict",
                eal: eal,
                application: ["-X", "enable.idempotence=true", "-X", "acks=1", "-X", "bootstrap.servers=127.0.0.1:1"],
                status: 1,
                mentions: ["cannot create a Kafka producer", "acks", "enable.idempotence"]
            ),
            Case(
                name: "a librdkafka setting that takes over the stop signal",
                eal: eal,
                application: ["-X", "internal.termination.signal=15", "-X", "bootstrap.servers=127.0.0.1:1"],
                status: 1,
                mentions: ["signal 15", "replaced by a library", "internal.termination.signal"]
            ),
            Case(
                name: "-X without =",
                eal: eal,
                application: ["-X", "linger.ms"],
                status: 64,
                mentions: ["key=value"]
            ),
            Case(
                name: "missing Kafka file",
                eal: eal,
                application: ["-c", "/nonexistent/kafka.ini"],
                status: 64,
                mentions: ["/nonexistent/kafka.ini", "does not exist"]
            ),
            Case(
                name: "more queues than the device has",
                eal: Harness.eal(lcores: 9, vdevs: ["net_af_packet0,iface=lo"]),
                application: ["-q", "4"],
                status: 1,
                mentions: ["receive queue", "Use 1 receive queue or fewer", "rx-queues"]
            ),
            Case(
                name: "unknown virtual device",
                eal: Harness.eal(lcores: 3, vdevs: ["net_nosuch0"]),
                application: [],
                status: 1,
                mentions: ["DPDK could not start", "--vdev"]
            ),
            Case(
                name: "too few lcores",
                eal: Harness.eal(lcores: 2, vdevs: ["net_null0"]),
                application: [],
                status: 1,
                mentions: ["2 worker lcores are needed", "Give EAL 3 lcores", "(Deployment.md, \"Cores\")"]
            ),
            Case(
                name: "negative number",
                eal: eal,
                application: ["--rx-burst=-5"],
                status: 64,
                mentions: ["receive burst", "-5"]
            ),
            Case(
                name: "overflowing number",
                eal: eal,
                application: ["-x", "99999999999999999999999"],
                status: 64,
                mentions: ["ring-size", "out of range"]
            ),
            Case(
                name: "empty topic",
                eal: eal,
                application: ["-t", ""],
                status: 64,
                mentions: ["topic", "valid Kafka topic"]
            ),
            Case(
                name: "Kafka file is a directory",
                eal: eal,
                application: ["-c", "/tmp"],
                status: 64,
                mentions: ["/tmp", "directory"]
            ),
            Case(
                name: "unreadable Kafka file",
                eal: eal,
                application: ["-c", "/proc/self/mem"],
                status: 64,
                mentions: ["/proc/self/mem", "cannot be read"]
            ),
            Case(
                name: "invalid EAL option",
                eal: eal + ["--no-such-eal-option"],
                application: [],
                status: 1,
                mentions: ["DPDK could not start", "--no-such-eal-option"]
            ),
            Case(
                name: "missing config file",
                eal: eal,
                application: ["--config", "/nonexistent.yaml"],
                status: 64,
                mentions: ["/nonexistent.yaml", "does not exist"]
            ),
            Case(
                name: "bad ring-full policy",
                eal: eal,
                application: ["--ring-full", "block"],
                status: 64,
                mentions: ["ring-full", "drop, wait"]
            ),
            Case(
                name: "bad metrics address",
                eal: eal,
                application: ["--metrics-address", "localhost"],
                status: 64,
                mentions: ["metrics-address", "HOST:PORT"]
            ),
            Case(
                name: "unknown sink",
                eal: eal,
                application: ["--sink", "s3"],
                status: 64,
                mentions: ["sink", "kafka, null"]
            ),
            Case(
                name: "malformed control cores",
                eal: eal,
                application: ["--control-cores", "3-1"],
                status: 64,
                mentions: ["control cores", "not a CPU list", "0,2-3"]
            ),
            Case(
                name: "control core number beyond any CPU",
                eal: eal,
                application: ["--control-cores", "4000"],
                status: 64,
                mentions: ["control cores", "not a CPU list"]
            ),
            Case(
                name: "control cores outside the process's CPUs",
                eal: eal,
                application: ["--control-cores", "1000"],
                status: 1,
                mentions: ["control cores 1000", "control-cores"]
            ),
            Case(
                name: "unknown partitioner",
                eal: eal,
                application: ["--partitioner", "random"],
                status: 64,
                mentions: ["partitioner", "default, flow, key"]
            ),
            Case(
                name: "unknown produce call",
                eal: eal,
                application: ["--produce-call", "va"],
                status: 64,
                mentions: ["produce-call", "batch, single"]
            ),
            Case(
                name: "unknown record time",
                eal: eal,
                application: ["--record-time", "receive"],
                status: 64,
                mentions: ["record-time", "capture, send"]
            ),
            Case(
                name: "unknown delivery-report place",
                eal: eal,
                application: ["--delivery-reports", "poller"],
                status: 64,
                mentions: ["delivery-reports", "lcore, thread"]
            ),
            // Kernel interfaces: what the af_packet driver or the kernel would refuse, and what would be cut.
            device(
                "af_packet frame size the kernel refuses",
                "net_af_packet0,iface=lo,framesz=5000",
                64,
                [
                    "--vdev=net_af_packet0,iface=lo,framesz=5000", "multiple of 16",
                    "Use --vdev=net_af_packet0,iface=lo,framesz=5120,blocksz=20480.",
                ]
            ),
            device(
                "af_packet frame size beyond a packet buffer",
                "net_af_packet0,iface=lo,framesz=65536,blocksz=65536",
                64,
                ["framesz=65536", "65,535 bytes", "framesz=65024,blocksz=520192"]
            ),
            device(
                "af_packet frame count the kernel refuses",
                "net_af_packet0,iface=lo,framesz=1024,framecnt=510",
                64,
                [
                    "framecnt=510", "frames a block holds",
                    "Use --vdev=net_af_packet0,iface=lo,framesz=1024,framecnt=512.",
                ]
            ),
            device(
                "af_packet block size below the frame size",
                "net_af_packet0,iface=lo,framesz=8192",
                64,
                [
                    "blocksz=4096 (the driver's default: one page) is smaller than framesz=8192",
                    "Use --vdev=net_af_packet0,iface=lo,framesz=8192,blocksz=8192.",
                ]
            ),
            device(
                "af_packet slots that do not fill their blocks",
                "net_af_packet0,iface=lo,framesz=9104,blocksz=12288",
                64,
                [
                    "blocksz=12288", "reads slot i at i × framesz",
                    "Use --vdev=net_af_packet0,iface=lo,framesz=9216,blocksz=36864.",
                ]
            ),
            device(
                "af_packet on an interface whose frames no ring slot holds",
                "net_af_packet0,iface=lo",
                1,
                ["MTU is 65536", "would cut frames", "ip link set lo mtu 64935"]
            ),
            device(
                "net_pcap on an interface whose frames exceed its snap length",
                "net_pcap0,iface=lo",
                1,
                ["MTU is 65536", "snap length of 16128 bytes", "ip link set lo mtu 16105"]
            ),
            Case(
                name: "capture filter libpcap refuses",
                eal: eal,
                application: ["-f", "tcp prt 80"],
                status: 64,
                mentions: ["capture filter (-f, --filter)", "libpcap", "syntax error", "at 'prt' (character 5)"]
            ),
            Case(
                name: "incomplete capture filter",
                eal: eal,
                application: ["--filter", "tcp port 443 and"],
                status: 64,
                mentions: ["capture filter", "at the end (the expression is incomplete)"]
            ),
            Case(
                name: "capture filter naming an unknown host",
                eal: eal,
                application: ["-f", "host no-such-host.invalid"],
                status: 64,
                mentions: ["unknown host 'no-such-host.invalid'", "(character 6)"]
            ),
            Case(
                name: "missing filter file",
                eal: eal,
                application: ["--filter-file", "/nonexistent/filter.txt"],
                status: 64,
                mentions: ["/nonexistent/filter.txt", "does not exist"]
            ),
            Case(
                name: "a filter and a filter file",
                eal: eal,
                application: ["-f", "tcp", "--filter-file", "/nonexistent/filter.txt"],
                status: 64,
                mentions: ["both a filter", "Give one of them"]
            ),
            Case(
                name: "unknown filter engine",
                eal: eal,
                application: ["--filter-engine", "fast"],
                status: 64,
                mentions: ["filter-engine", "jit, interpreter"]
            ),
            Case(
                name: "negative number as an argument of its own",
                eal: eal,
                application: ["--snap-length", "-5"],
                status: 64,
                mentions: ["snap length (--snap-length): -5 is out of range", "Use 1 to 262144"]
            ),
            Case(
                name: "negative ring size as an argument of its own",
                eal: eal,
                application: ["-x", "-1"],
                status: 64,
                mentions: ["ring size", "-1"]
            ),
            Case(
                name: "secret file that does not exist",
                eal: eal,
                application: ["-X", "sasl.password=@/nonexistent/kafka-password"],
                status: 64,
                mentions: ["sasl.password", "/nonexistent/kafka-password", "does not exist"]
            ),
            Case(
                name: "systemd credential without $CREDENTIALS_DIRECTORY",
                eal: eal,
                application: ["-X", "sasl.password=@kafka-password"],
                status: 64,
                mentions: ["CREDENTIALS_DIRECTORY", "LoadCredential=kafka-password"]
            ),
            Case(
                name: "EAL options after --",
                eal: [],
                application: ["--vdev=net_null0"],
                status: 64,
                mentions: ["EAL options go before '--'"]
            ),
        ]

        /// A virtual device refused with the default options.
        static func device(_ name: String, _ vdev: String, _ status: Int32, _ mentions: [String]) -> Case {
            Case(
                name: name,
                eal: Harness.eal(lcores: 3, vdevs: [vdev]),
                application: [],
                status: status,
                mentions: mentions
            )
        }

        @Test(arguments: cases)
        func rejectedWithAClearMessage(_ input: Case) throws {
            let result = try Harness.probe(eal: input.eal, input.application, timeout: 60)
            #expect(result.status == input.status, "\(result.stderr)")
            #expect(!result.signaled)
            for text in input.mentions {
                #expect(result.stderr.contains(text), "stderr should mention '\(text)': \(result.stderr)")
            }
            #expect(result.runtimeFolderRemoved)
        }

        /// Kernel interfaces the probe would capture unfaithfully, on a veth pair
        /// of its own (MTU 9000): each refused at start, naming the device
        /// argument or the interface setting to change.
        @Test func kernelInterfacesThatWouldCutFramesAreRefusedWithTheFix() throws {
            let namespace = try Harness.VethNamespace(mtu: 9000)
            func refused(
                _ vdev: String,
                _ application: [String] = [],
                memory: String = "512",
                mentions: [String]
            ) throws {
                let eal = Harness.eal(lcores: 3, vdevs: [vdev]).map { $0 == "512" ? memory : $0 }
                let result = try Harness.run(
                    "/usr/bin/env",
                    namespace.wrapper + [Harness.binary] + eal + ["--", "-X", "bootstrap.servers=127.0.0.1:1"]
                        + application,
                    timeout: 60
                )
                #expect(result.status == 1, "\(vdev): \(result.stderr)")
                #expect(!result.signaled)
                #expect(result.runtimeFolderRemoved)
                for text in mentions {
                    #expect(result.stderr.contains(text), "stderr should mention '\(text)': \(result.stderr)")
                }
            }
            // The driver's default ring slot (2,048 bytes) on MTU 9000: the fix names the slot that holds 9,022-byte frames.
            try refused(
                "net_af_packet0,iface=fcA",
                mentions: [
                    "framesz=2048", "MTU is 9000", "frames of up to 9022 bytes",
                    "--vdev=net_af_packet0,iface=fcA,framesz=9216,blocksz=36864", "ip link set fcA mtu 1959",
                    "--vdev=net_pcap0,iface=fcA",
                ]
            )
            // The largest slot needs 64 KiB packet buffers: more than EAL's memory holds.
            try refused(
                "net_af_packet0,iface=fcA,framesz=61440,blocksz=61440",
                memory: "128",
                mentions: ["cannot allocate 4095 packet buffers of 61536 bytes", "framesz=61440", "(-m", "ring-size"]
            )
            // Two sockets in the fanout group, one read: half the frames would vanish in the kernel.
            try refused(
                "net_af_packet0,iface=fcA,qpairs=2,framesz=9216,blocksz=36864",
                mentions: ["qpairs=2", "dropped in the kernel", "Use -q 2"]
            )
            // Receive aggregation hands capture frames the wire never carried.
            try namespace.run(["ethtool", "-K", "fcA", "gro", "on"])
            try refused("net_pcap0,iface=fcA", mentions: ["GRO on", "ethtool -K fcA gro off lro off"])
            try namespace.run(["ethtool", "-K", "fcA", "gro", "off"])
            // net_pcap's live snap length is 16,128 bytes.
            try namespace.run(["ip", "link", "set", "fcA", "mtu", "16200"])
            try refused(
                "net_pcap0,iface=fcA",
                mentions: ["MTU is 16200", "snap length of 16128 bytes", "ip link set fcA mtu 16105"]
            )
        }

        @Test func helpListsEveryOptionWithItsDefault() throws {
            for flag in ["-h", "--help"] {
                let result = try Harness.probe(eal: [], [flag])
                #expect(result.status == 0)
                let text = result.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
                #expect(text.contains("--ring-size") && text.contains("(default: 2048)"))
                #expect(result.stdout.contains("--print-config") && result.stdout.contains("-X <key=value>"))
            }
        }

        @Test func configFileSyntaxErrorNamesTheLine() throws {
            let directory = TestFiles.temporaryDirectory()
            let file = directory.appendingPathComponent("fastcapa.yaml")
            try "rx-burst: 32\nkafka:\n  linger.ms: [5\n".write(to: file, atomically: true, encoding: .utf8)
            let result = try Harness.probe(eal: Self.eal, ["--config", file.path])
            #expect(result.status == 64)
            #expect(result.stderr.contains(file.path) && result.stderr.contains("line"), "\(result.stderr)")
            #expect(result.runtimeFolderRemoved)
        }

        /// An environment variable a file names but the environment lacks: the
        /// message names the variable, the file and the line.
        @Test func unsetEnvironmentVariableIsNamed() throws {
            let directory = TestFiles.temporaryDirectory()
            let ini = directory.appendingPathComponent("kafka.ini").path
            try "[kafka-global]\nbootstrap.servers = ${FASTCAPA_TEST_NO_SUCH_BROKERS}\n".write(
                toFile: ini,
                atomically: true,
                encoding: .utf8
            )
            let config = directory.appendingPathComponent("fastcapa.yaml").path
            try "stats-interval: 0\ntopic: ${FASTCAPA_TEST_NO_SUCH_TOPIC}\n".write(
                toFile: config,
                atomically: true,
                encoding: .utf8
            )
            for (arguments, variable, place) in [
                (["-c", ini], "FASTCAPA_TEST_NO_SUCH_BROKERS", "\(ini):2"),
                (["--config", config], "FASTCAPA_TEST_NO_SUCH_TOPIC", "\(config):2"),
            ] {
                let result = try Harness.probe(eal: Self.eal, arguments)
                #expect(result.status == 64, "\(result.stderr)")
                #expect(result.stderr.contains(variable) && result.stderr.contains("is not set"), "\(result.stderr)")
                #expect(result.stderr.contains(place), "\(result.stderr)")
                #expect(result.runtimeFolderRemoved)
            }
        }

        /// Refused before EAL starts (status 64, no runtime folder), naming the file (and line) and the word.
        @Test(arguments: [
            (
                "filter.txt", "# web and DNS\ntcp port 443 or\n  udp prot 53  # the typo\n", "--filter-file",
                "at 'prot'", ""
            ),
            ("fastcapa.yaml", "rx-burst: 32\nfilter: \"ip and and tcp\"\n", "--config", "at 'and' (character 8)", ":2"),
        ])
        func badCaptureFilterInAFileOrTheConfigNamesWhere(
            name: String,
            text: String,
            option: String,
            word: String,
            line: String
        ) throws {
            let path = TestFiles.temporaryDirectory().appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let result = try Harness.probe(eal: Self.eal, [option, path])
            #expect(result.status == 64 && result.runtimeFolderRemoved)
            #expect(result.stderr.contains(path + line), "\(result.stderr)")
            #expect(result.stderr.contains(word), "\(result.stderr)")
        }

        @Test func malformedKafkaFileNamesTheLine() throws {
            let directory = TestFiles.temporaryDirectory()
            let file = directory.appendingPathComponent("kafka.ini")
            try "[kafka-global]\nbootstrap.servers = localhost:9092\nthis line is wrong\n".write(
                to: file,
                atomically: true,
                encoding: .utf8
            )
            let result = try Harness.probe(eal: Self.eal, ["-c", file.path])
            #expect(result.status == 64)
            #expect(result.stderr.contains("kafka.ini:3"))
            let binary = directory.appendingPathComponent("binary.ini")
            try Data([0x7F, 0x45, 0x4C, 0x46, 0, 1, 2]).write(to: binary)
            let binaryResult = try Harness.probe(eal: Self.eal, ["-c", binary.path])
            #expect(binaryResult.status == 64)
            #expect(binaryResult.stderr.contains("binary"))
        }
    }
}
