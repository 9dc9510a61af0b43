import FastcapaFilter
import FastcapaKafka
import Glibc

/// Everything the data path needs to know, validated before any resource exists.
package struct CaptureSettings: Sendable, Equatable {
    package enum RingFullPolicy: String, Sendable, CaseIterable {
        /// Free and count the packets the ring refuses: capture never waits.
        case drop
        /// Retry until the ring takes them: nothing is lost after the NIC, and
        /// on a live NIC the loss moves to the NIC's own counters.
        case wait
    }

    package enum Partitioning: String, Sendable, CaseIterable {
        /// Each batch a transmit worker produces goes to the next partition in
        /// turn: spread evenly, with no partitioner call per message.
        case roundRobin = "round-robin"
        /// One partition per flow: the packet's RSS hash, or a symmetric
        /// software hash of addresses and ports, so a flow stays in order.
        case flow
        /// librdkafka's partitioner on the key (a hash of the capture time),
        /// called per message, as Metron's Fastcapa did.
        case key

        /// Other names accepted for a value: `default` was round-robin's name,
        /// and read as if it meant librdkafka's default partitioner.
        package static let aliases: [String: Partitioning] = ["default": .roundRobin]
    }

    /// How a transmit worker hands packets to librdkafka.
    package enum ProduceCall: String, Sendable, CaseIterable {
        /// rd_kafka_produce_batch: one call (one clock read, one lock) per batch.
        case batch
        /// rd_kafka_produce per packet (for comparison).
        case single
    }

    /// What a message's Kafka timestamp (CreateTime, epoch ms) holds.
    package enum RecordTime: String, Sendable, CaseIterable {
        /// The packet's capture time (its key's µs ÷ 1000): Kafka's time index,
        /// offsets-for-times and time-based retention follow the capture. Every
        /// message is produced one `rd_kafka_produceva` call each, since a batch
        /// stamps all its messages with one time.
        case capture
        /// When librdkafka took the message (once per batch): Metron's Fastcapa's record time.
        case send

        /// What the start line and `check` say of it.
        package var summary: String {
            switch self {
            case .capture: "capture (each message's Kafka timestamp is its capture time, ms)"
            case .send: "send (each message's Kafka timestamp is when librdkafka took it)"
            }
        }
    }

    /// Where a producer's delivery reports are served.
    package enum DeliveryReports: String, Sendable, CaseIterable {
        /// The transmit lcore polls its producer after every burst.
        case lcore
        /// A thread per producer on the control cores polls it; the lcore never does.
        case thread
    }

    package var portMask: UInt64 = 0x01
    package var rxBurst: Int = 32
    package var maxRebursts: Int = 4
    package var txBurst: Int = 256
    package var rxDescriptors: Int = 1024
    package var ringSize: Int = 2048
    package var rxQueues: Int = 1
    package var txWorkersPerRing: Int = 1
    package var ringFull: RingFullPolicy = .drop
    /// Whether `ringFull` was given (flag or config file). When it was not and
    /// every port replays capture files once, the pipeline waits instead of
    /// dropping: a file can be read slower, so loss there would be for nothing.
    package var ringFullGiven = false
    package var partitioning: Partitioning = .roundRobin
    package var produceCall: ProduceCall = .batch
    package var recordTime: RecordTime = .send
    package var deliveryReports: DeliveryReports = .lcore
    /// Frames longer than this are cut to it (and counted as truncated).
    package var snapLength: Int = 262_144
    /// How many times a transmit worker waits 1 ms for room in librdkafka's
    /// queue before it drops the packet.
    package var queueFullRetries: Int = 50
    /// Polling lcores sleep after this many empty polls in a row...
    package var idleSpinPolls: Int = 1024
    /// ...for at most this long (doubling from 1 µs). 0: never sleep, poll hard.
    package var idleSleepMaxMicros: Int = 100
    /// The topic; `{port}` in it becomes each port's id (one topic per port).
    package var topic: String = "pcap"
    /// Headers added to every message (Documentation/MessageFormat.md); none by
    /// default, so that produce batches stay as they are.
    package var headers: [MessageHeader] = []
    /// The `probe` header's value; empty: the host name.
    package var probeID: String = ""
    /// Bundles (`--bundle-packets`, MessageFormat.md "Bundles"): most packets per
    /// message; 1: off, one packet per message.
    package var bundlePackets: Int = 1
    /// Most bytes of a bundle's value, record headers included: the default holds
    /// a record of the longest snap length and stays below librdkafka's default
    /// `message.max.bytes` (1000000).
    package var bundleBytes: Int = 524_288
    /// Longest a packet waits in an open bundle, µs.
    package var bundleLingerMicros: Int = 1000

    /// Whether transmit workers bundle packets.
    package var bundles: Bool { bundlePackets > 1 }

    /// `fastcapa check`'s words on bundles: the limits in force and each transmit worker's pool.
    package var bundleSummary: String {
        guard bundles else { return "off (one packet per message)" }
        let buffers = BundlePool.bufferCount(bufferSize: bundleBytes, packets: bundlePackets)
        return "up to \(bundlePackets) packets, \(bundleBytes) bytes, \(bundleLingerMicros) us linger; "
            + "\(buffers) buffers (\((buffers * bundleBytes) >> 20) MiB, reserved, touched as used) per transmit worker"
    }

    /// The most bundle bytes `message.max.bytes` leaves room for: the key and headers take at most this.
    package static let bundleOverheadBytes = 512
    package static let maxBundlePackets = 65_535
    package static let maxBundleLingerMicros = 1_000_000

    /// A header `--headers` can add to every message (`port`, `queue`, `probe`).
    package typealias MessageHeader = MessageContract.Header
    /// Where transmit workers send packets: Kafka, or nowhere (benchmarks of the
    /// receive path: packets are freed after the ring and counted as null_sink).
    package var sink: Sink = .kafka

    package enum Sink: String, Sendable, CaseIterable {
        case kafka
        case null
    }

    /// The capture filter, a tcpdump expression (pcap-filter(7)); empty: none.
    /// Packets it rejects are freed on the receive lcore and counted as filtered.
    package var filter: String = ""
    /// How the receive lcores run it.
    package var filterEngine: FilterEngine = .jit

    /// The filter as the pipeline loads it: nil when there is none.
    package var filterExpression: String? {
        filter.allSatisfy(\.isWhitespace) ? nil : filter
    }

    /// Flow cutoff: keep the first this many packets of each flow (0: no packet limit).
    package var flowCutoffPackets: Int = 0
    /// Flow cutoff: keep a packet while its flow's bytes before it are fewer than this (0: no byte limit).
    package var flowCutoffBytes: Int = 0
    /// A flow is forgotten once a packet comes this many seconds (capture time) after its latest.
    package var flowTimeoutSeconds: Int = 120
    /// Flows each receive queue's table holds; the tables are made at start when a cutoff is set.
    package var flowTableSize: Int = 1_048_576
    /// Duplicate removal: a frame equal to one seen at most this many µs before it is dropped (0: off).
    package var dedupWindowMicros: Int = 0
    /// Frames each receive queue's duplicate window remembers; made at start when the window is set.
    package var dedupTableSize: Int = 1_048_576

    /// The flow cutoff in force: nil when neither limit is set.
    package var flowCutoff: FlowCutoff? {
        guard flowCutoffPackets > 0 || flowCutoffBytes > 0 else { return nil }
        return FlowCutoff(
            packets: flowCutoffPackets > 0 ? UInt64(flowCutoffPackets) : nil,
            bytes: flowCutoffBytes > 0 ? UInt64(flowCutoffBytes) : nil,
            timeoutMicros: UInt64(flowTimeoutSeconds) * 1_000_000
        )
    }

    /// What the receive lcores apply after the capture filter (a reload may change it).
    package var receiveRules: ReceiveRules {
        ReceiveRules(cutoff: flowCutoff, dedupWindowMicros: UInt64(max(dedupWindowMicros, 0)))
    }

    package init() {}

    package static let maxFlowTimeoutSeconds = 86_400
    package static let maxDedupWindowMicros = 60_000_000

    package static let maxRxBurst = 1024
    package static let maxTxBurst = 4096
    package static let maxRebursts = 64
    package static let maxSnapLength = 262_144

    /// A setting out of its range. `key` is the setting's name in the
    /// configuration (the long option and config-file key); the command line
    /// adds its flags when it reports the problem.
    package struct Invalid: Error, CustomStringConvertible, Equatable {
        package var key: String
        package var name: String
        package var problem: String
        package var fix: String
        package var description: String { "\(name) (\(key)): \(problem). \(fix)" }
    }

    /// Checks every setting; the first problem found is thrown with its fix.
    package func validate() throws(Invalid) {
        func check(_ ok: Bool, _ key: String, _ name: String, _ problem: String, _ fix: String) throws(Invalid) {
            if !ok { throw Invalid(key: key, name: name, problem: problem, fix: fix) }
        }
        try check(
            portMask != 0,
            "port-mask",
            "port mask",
            "0x0 selects no port",
            "Give a hex mask with a bit per port, e.g. 0x1 for port 0."
        )
        try check(
            (1...Self.maxRxBurst).contains(rxBurst),
            "rx-burst",
            "receive burst",
            "\(rxBurst) is out of range",
            "Use 1 to \(Self.maxRxBurst) (default 32)."
        )
        try check(
            (0...Self.maxRebursts).contains(maxRebursts),
            "max-rebursts",
            "re-bursts",
            "\(maxRebursts) is out of range",
            "Use 0 to \(Self.maxRebursts) (default 4)."
        )
        try check(
            (1...Self.maxTxBurst).contains(txBurst),
            "tx-burst",
            "transmit burst",
            "\(txBurst) is out of range",
            "Use 1 to \(Self.maxTxBurst) (default 256)."
        )
        try check(
            (1...32768).contains(rxDescriptors),
            "rx-desc",
            "receive descriptors",
            "\(rxDescriptors) is out of range",
            "Use 1 to 32768 (default 1024); the device may round it."
        )
        try check(
            ringSize >= 2 && ringSize <= 1 << 28 && ringSize & (ringSize - 1) == 0,
            "ring-size",
            "ring size",
            "\(ringSize) is not a power of two between 2 and 2^28",
            "Use a power of two such as 2048 (default) or 65536; the ring holds size - 1 packets."
        )
        try check(
            (1...128).contains(rxQueues),
            "rx-queues",
            "receive queues",
            "\(rxQueues) is out of range",
            "Use 1 to 128 (default 1)."
        )
        try check(
            (1...64).contains(txWorkersPerRing),
            "tx-workers",
            "transmit workers",
            "\(txWorkersPerRing) is out of range",
            "Use 1 to 64 per ring (default 1)."
        )
        try check(
            (1...Self.maxSnapLength).contains(snapLength),
            "snap-length",
            "snap length",
            "\(snapLength) is out of range",
            "Use 1 to 262144 bytes (default 262144: keep whole frames)."
        )
        try check(
            (0...100_000).contains(queueFullRetries),
            "queue-full-retries",
            "queue-full retries",
            "\(queueFullRetries) is out of range",
            "Use 0 to 100000 (each waits 1 ms; default 50)."
        )
        try check(
            idleSpinPolls >= 0,
            "idle-spin-polls",
            "idle spin polls",
            "\(idleSpinPolls) is negative",
            "Use 0 or more."
        )
        try check(
            (0...1_000_000).contains(idleSleepMaxMicros),
            "idle-sleep-max-us",
            "idle sleep",
            "\(idleSleepMaxMicros) is out of range",
            "Use 0 (poll hard) to 1000000 µs (default 100)."
        )
        try check(
            flowCutoffPackets >= 0,
            "flow-cutoff-packets",
            "flow cutoff",
            "\(flowCutoffPackets) is negative",
            "Give the packets to keep of each flow, e.g. 20, or 0 for no packet limit (default)."
        )
        try check(
            flowCutoffBytes >= 0,
            "flow-cutoff-bytes",
            "flow cutoff",
            "\(flowCutoffBytes) is negative",
            "Give the bytes to keep of each flow, e.g. 65536, or 0 for no byte limit (default)."
        )
        try check(
            (1...Self.maxFlowTimeoutSeconds).contains(flowTimeoutSeconds),
            "flow-timeout",
            "flow timeout",
            "\(flowTimeoutSeconds) is out of range",
            "Use 1 to \(Self.maxFlowTimeoutSeconds) seconds (default 120)."
        )
        try check(
            (FlowTable.minimumCapacity...FlowTable.maximumCapacity).contains(flowTableSize),
            "flow-table-size",
            "flow table size",
            "\(flowTableSize) is out of range",
            "Use \(FlowTable.minimumCapacity) to \(FlowTable.maximumCapacity) flows per receive queue "
                + "(default 1048576, about \(FlowTable.approximateBytes(capacity: 1_048_576) >> 20) MiB)."
        )
        try check(
            (0...Self.maxDedupWindowMicros).contains(dedupWindowMicros),
            "dedup-window-us",
            "duplicate window",
            "\(dedupWindowMicros) is out of range",
            "Use 0 (off, default) to \(Self.maxDedupWindowMicros) µs; copies from a SPAN port or two taps "
                + "arrive within tens of µs."
        )
        try check(
            (DuplicateWindow.minimumEntries...DuplicateWindow.maximumEntries).contains(dedupTableSize),
            "dedup-table-size",
            "duplicate window size",
            "\(dedupTableSize) is out of range",
            "Use \(DuplicateWindow.minimumEntries) to \(DuplicateWindow.maximumEntries) frames per receive "
                + "queue (default 1048576, rounded up to a power of two); about 8 times the frames a window sees."
        )
        if let expression = filterExpression {
            do {
                _ = try CaptureFilter(expression, snapLength: snapLength)
            } catch {
                throw Invalid(
                    key: "filter",
                    name: "capture filter",
                    problem: "'\(expression)' is refused by \(error)",
                    fix: "Write a tcpdump expression (pcap-filter(7)), e.g. 'tcp port 443 or udp port 53'; "
                        + "tcpdump -d 'EXPRESSION' checks one."
                )
            }
        }
        for port in ports {
            let name = topic(forPort: port)
            try check(
                Self.isValidTopicName(name),
                "topic",
                "topic",
                name == topic
                    ? "'\(topic)' is not a valid Kafka topic name"
                    : "'\(topic)' gives '\(name)' for port \(port), which is not a valid Kafka topic name",
                "Use 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-' (not '.' or '..'); "
                    + "{port} stands for the port's id, e.g. pcap-{port}."
            )
        }
        try check(
            Set(headers).count == headers.count,
            "headers",
            "headers",
            "'\(headers.map(\.rawValue).joined(separator: ","))' names a header twice",
            "Name each of port, queue, probe and time_ns at most once, e.g. --headers port,queue,probe."
        )
        try check(
            (1...Self.maxBundlePackets).contains(bundlePackets),
            "bundle-packets",
            "bundle packets",
            "\(bundlePackets) is out of range",
            "Use 1 (off: one packet per message, default) to \(Self.maxBundlePackets) packets per message."
        )
        try check(
            (1...Self.maxBundleLingerMicros).contains(bundleLingerMicros),
            "bundle-linger-us",
            "bundle linger",
            "\(bundleLingerMicros) is out of range",
            "Use 1 to \(Self.maxBundleLingerMicros) us (default 1000); consume's seek finds a bundle that "
                + "straddles --since only while its span stays below --slack."
        )
        try check(
            bundleBytes > 0,
            "bundle-bytes",
            "bundle bytes",
            "\(bundleBytes) is out of range",
            "Use at least 16 + the snap length and at most message.max.bytes - 512 (default 524288)."
        )
        let smallestBundle = MessageContract.Bundle.recordLength(snapLength)
        try check(
            !bundles || bundleBytes >= smallestBundle,
            "bundle-bytes",
            "bundle bytes",
            "\(bundleBytes) cannot hold one packet of the snap length \(snapLength) "
                + "(\(MessageContract.Bundle.recordHeaderLength)-byte record header + \(snapLength) bytes = \(smallestBundle))",
            "Use --bundle-bytes \(smallestBundle) or more, or a shorter --snap-length."
        )
        try check(
            !bundles || !headers.contains(.timeNanos),
            "headers",
            "headers",
            "time_ns cannot go with bundles: a bundle's records carry each packet's capture time in microseconds "
                + "and one header could not carry every packet's nanoseconds",
            "Drop time_ns from --headers, or send one packet per message (--bundle-packets 1)."
        )
        try check(
            probeID.utf8.count <= 255 && probeID.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") },
            "probe-id",
            "probe id",
            "'\(probeID)' is not 1 to 255 printable ASCII characters without spaces or ':'",
            "Use a short name such as dc1-tap3 (default: the host name)."
        )
    }

    /// The topic a port's packets go to: `topic` with `{port}` replaced by its id.
    package func topic(forPort port: UInt16) -> String {
        MessageContract.topic(topic, port: port)
    }

    /// Every topic the selected ports produce to, in port order, once each.
    package var topics: [String] {
        var seen = Set<String>()
        return ports.map(topic(forPort:)).filter { seen.insert($0).inserted }
    }

    /// The `probe` header's value: `probeID`, or the host name.
    package var probeName: String {
        guard probeID.isEmpty else { return probeID }
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "localhost" }
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return host.isEmpty ? "localhost" : host
    }

    /// Kafka's own rule for topic names.
    package static func isValidTopicName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 249, name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
    }

    /// The ports selected by the mask, in order.
    package var ports: [UInt16] {
        (0..<64).filter { portMask & (1 << UInt64($0)) != 0 }.map { UInt16($0) }
    }

    /// Lcores the pipeline needs besides the main one.
    package var workerLcoresNeeded: Int {
        ports.count * rxQueues * (1 + txWorkersPerRing)
    }
}
