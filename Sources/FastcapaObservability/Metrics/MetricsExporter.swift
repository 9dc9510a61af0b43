import FastcapaCapture
import Foundation
import Prometheus
import Synchronization

/// Turns the monitor's latest snapshot into Prometheus metrics, named after
/// Prometheus' guidance: one family per quantity (`fastcapa_dropped_packets_total`
/// for every drop, by `reason`), units in the name, states as labels, nothing
/// exported that is not known (no round trip before librdkafka measured one).
///
/// Counters and gauges live in a swift-prometheus registry (which swift-metrics
/// is bootstrapped onto, so library metrics land there too). Counters are set
/// from the snapshot's totals at each scrape. The delivery-latency histogram is
/// kept by the lcores in fixed buckets, so it is written out here as such, and
/// the `process_*` metrics are read from /proc. A render reads nothing but the
/// snapshot, so it is safe at any moment, during and after the stop; renders are
/// serialised (they reset and set shared counters).
package final class MetricsExporter: Sendable {
    package let registry: PrometheusCollectorRegistry
    private let latest: @Sendable () -> PipelineMonitor.Snapshot
    private let queueLabels: [String]
    private let rendering = Mutex(())
    private let outputs: @Sendable () -> [(file: String, counts: LineWriter.Counts)]
    private let refusedReloads: @Sendable () -> Int
    /// Flows each receive queue's table holds (nil: no flow cutoff was set at start).
    private let flowTableCapacity: Int?
    /// Whether the receive queues have duplicate windows.
    private let duplicateWindows: Bool

    /// - Parameters:
    ///   - buildInfo: the labels of `fastcapa_build_info` (version, dpdk, librdkafka).
    ///   - outputs: the lines the -s and --counter-trace files took and lost (`StatisticsService.outputCounts`).
    ///   - refusedReloads: SIGHUPs whose configuration was refused (`CaptureSupervisor.refusedReloads`).
    ///   - embeddedBroker: the run publishes to the embedded broker (`fastcapa_embedded_broker` 1).
    package convenience init(
        pipeline: CapturePipeline,
        monitor: PipelineMonitor,
        registry: PrometheusCollectorRegistry,
        buildInfo: [(String, String)],
        outputs: @escaping @Sendable () -> [(file: String, counts: LineWriter.Counts)] = { [] },
        refusedReloads: @escaping @Sendable () -> Int = { 0 },
        embeddedBroker: Bool = false
    ) {
        self.init(
            queueLabels: pipeline.ports.flatMap { port in (0..<port.rxQueues).map { "\(port.id)/\($0)" } },
            ringCapacities: pipeline.ringCapacities,
            latest: { monitor.snapshot },
            registry: registry,
            buildInfo: buildInfo,
            outputs: outputs,
            refusedReloads: refusedReloads,
            embeddedBroker: embeddedBroker,
            flowTableCapacity: pipeline.flowTableCapacity,
            duplicateWindows: pipeline.hasDuplicateWindows
        )
    }

    /// - Parameters:
    ///   - queueLabels: each receive queue's `queue` label (`port/queue`), in the snapshot's order.
    ///   - latest: the snapshot a render reads.
    init(
        queueLabels: [String],
        ringCapacities: [Int],
        latest: @escaping @Sendable () -> PipelineMonitor.Snapshot,
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        buildInfo: [(String, String)],
        outputs: @escaping @Sendable () -> [(file: String, counts: LineWriter.Counts)] = { [] },
        refusedReloads: @escaping @Sendable () -> Int = { 0 },
        embeddedBroker: Bool = false,
        flowTableCapacity: Int? = nil,
        duplicateWindows: Bool = false
    ) {
        self.flowTableCapacity = flowTableCapacity
        self.duplicateWindows = duplicateWindows
        self.latest = latest
        self.outputs = outputs
        self.refusedReloads = refusedReloads
        self.registry = registry
        self.queueLabels = queueLabels
        registry.makeGauge(descriptor: Self.descriptor("fastcapa_build_info"), labels: buildInfo).set(1.0)
        registry.makeGauge(descriptor: Self.descriptor("fastcapa_embedded_broker"), labels: [])
            .set(embeddedBroker ? 1.0 : 0.0)
        for (ring, capacity) in ringCapacities.enumerated() where ring < queueLabels.count {
            registry.makeGauge(
                descriptor: Self.descriptor("fastcapa_ring_capacity"),
                labels: [("queue", queueLabels[ring])]
            )
            .set(Double(capacity))
        }
        if let flowTableCapacity {
            for label in queueLabels {
                registry.makeGauge(
                    descriptor: Self.descriptor("fastcapa_flow_table_capacity"),
                    labels: [("queue", label)]
                )
                .set(Double(flowTableCapacity))
            }
        }
    }

    /// The Prometheus text exposition of the latest snapshot.
    package func render() -> String {
        rendering.withLock { _ in render(latest()) }
    }

    private func render(_ latest: PipelineMonitor.Snapshot) -> String {
        let snapshot = latest.capture
        for (index, counts) in snapshot.perQueue.enumerated() where index < queueLabels.count {
            let labels = [("queue", queueLabels[index])]
            set(counter: "fastcapa_received_packets_total", labels, counts.received)
            set(counter: "fastcapa_received_bytes_total", labels, counts.receivedBytes)
            set(counter: "fastcapa_enqueued_packets_total", labels, counts.enqueued)
            set(counter: "fastcapa_capture_clock_held_reads_total", labels, counts.clockHeld)
            for (reason, count) in counts.exclusions.all {
                set(counter: Self.metricName(reason), labels, count)
            }
            for (reason, count) in counts.drops.all where reason.stage == .receive {
                set(counter: "fastcapa_dropped_packets_total", labels + [("reason", reason.name)], count)
            }
            if let flowTableCapacity {
                set(counter: "fastcapa_flow_cutoff_bytes_total", labels, counts.flowCutoffBytes)
                set(counter: "fastcapa_flow_table_full_packets_total", labels, counts.flowTableFull)
                set(counter: "fastcapa_flows_created_total", labels, counts.flowsCreated)
                set(counter: "fastcapa_flows_expired_total", labels, counts.flowsExpired)
                gauge("fastcapa_flows_active", labels).set(Double(counts.flowsActive))
                gauge("fastcapa_flow_table_fill_ratio", labels)
                    .set(Double(counts.flowsActive) / Double(max(flowTableCapacity, 1)))
            }
            if duplicateWindows {
                set(counter: "fastcapa_duplicate_evicted_frames_total", labels, counts.duplicateEvicted)
            }
        }
        for (ring, depth) in snapshot.ringDepths.enumerated() where ring < queueLabels.count {
            gauge("fastcapa_ring_depth", [("queue", queueLabels[ring])]).set(Double(depth))
        }
        var histograms: [String] = []
        for (index, counts) in snapshot.perWorker.enumerated() {
            let labels = [("worker", "\(index)")]
            set(counter: "fastcapa_produced_packets_total", labels, counts.produced)
            set(counter: "fastcapa_delivered_packets_total", labels, counts.delivered)
            set(counter: "fastcapa_delivered_bytes_total", labels, counts.deliveredBytes)
            set(counter: "fastcapa_truncated_packets_total", labels, counts.truncated)
            set(counter: "fastcapa_reproduced_packets_total", labels, counts.reproduced)
            set(counter: "fastcapa_bundles_sent_total", labels, counts.bundlesProduced)
            for (reason, count) in counts.drops.all where reason.stage != .receive {
                set(counter: "fastcapa_dropped_packets_total", labels + [("reason", reason.name)], count)
            }
            if index < snapshot.producers.count {
                let producer = snapshot.producers[index]
                gauge("fastcapa_kafka_queue_messages", labels).set(Double(producer.kafkaQueued))
                let roundTrip = gauge("fastcapa_broker_round_trip_seconds", labels)
                if let milliseconds = producer.roundTripMs {
                    roundTrip.set(milliseconds / 1000)
                } else {
                    registry.unregisterGauge(roundTrip)  // unknown: no sample rather than a 0 that reads as fast
                }
            }
            if index < snapshot.restarts.count {
                set(counter: "fastcapa_producer_restarts_total", labels, UInt64(snapshot.restarts[index]))
            }
            if index < latest.states.count {
                let current = Self.name(latest.states[index])
                for state in Self.stateNames {
                    gauge("fastcapa_producer_state", labels + [("state", state)]).set(state == current ? 1.0 : 0.0)
                }
            }
            histograms += Self.histogramLines("fastcapa_delivery_latency_seconds", labels: labels, counts.latency)
        }
        for (port, nic) in snapshot.perPort {
            for (name, value) in [
                ("received_packets", nic.received), ("received_bytes", nic.receivedBytes),
                ("missed_packets", nic.missed),
                ("no_mbuf_packets", nic.noMbuf), ("error_packets", nic.errors),
                ("kernel_dropped_packets", nic.kernelDropped),
            ] {
                set(counter: "fastcapa_nic_\(name)_total", [("port", "\(port)")], value)
            }
        }
        set(counter: "fastcapa_reloads_refused_total", [], UInt64(refusedReloads()))
        for (file, counts) in outputs() {
            set(counter: "fastcapa_output_lines_total", [("file", file)], UInt64(counts.written))
            for (reason, lost) in [
                ("write_error", counts.failed), ("queue_full", counts.overflowed), ("stop_timeout", counts.unwritten),
            ] {
                set(counter: "fastcapa_output_lost_lines_total", [("file", file), ("reason", reason)], UInt64(lost))
            }
        }
        for link in snapshot.links {
            let labels = [("port", "\(link.port)")]
            gauge("fastcapa_nic_link_up", labels).set(link.up ? 1.0 : 0.0)
            gauge("fastcapa_nic_idle_seconds", labels).set(link.idleSeconds)
            let speed = gauge("fastcapa_nic_link_speed_bytes_per_second", labels)
            if let mbps = link.speedMbps {
                speed.set(Double(mbps) * 125_000)
            } else {
                registry.unregisterGauge(speed)  // unknown (or no carrier): no sample rather than a made-up 0
            }
        }
        let header = [
            "# HELP fastcapa_delivery_latency_seconds \(Self.help["fastcapa_delivery_latency_seconds"]!)",
            "# TYPE fastcapa_delivery_latency_seconds histogram",
        ]
        let latency = histograms.isEmpty ? "" : (header + histograms).joined(separator: "\n") + "\n"
        return registry.emitToString() + latency + (ProcessMetrics.sample().map(ProcessMetrics.lines) ?? "")
    }

    /// An exclusion's counter: `fastcapa_filtered_packets_total`.
    static func metricName(_ reason: ExclusionReason) -> String { "fastcapa_\(reason.name)_packets_total" }

    private func set(counter name: String, _ labels: [(String, String)], _ value: UInt64) {
        let counter = registry.makeCounter(descriptor: Self.descriptor(name), labels: labels)
        counter.reset()
        counter.increment(by: Int64(clamping: value))
    }

    private func gauge(_ name: String, _ labels: [(String, String)]) -> Gauge {
        registry.makeGauge(descriptor: Self.descriptor(name), labels: labels)
    }

    static func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help[name] ?? "")
    }

    /// The `# HELP` text of every metric: the drop family names the reasons counted per receive queue.
    static let help: [String: String] = fixedHelp.merging(
        [("fastcapa_dropped_packets_total", droppedHelp)]
            + ExclusionReason.allCases.map { (metricName($0), $0.metricHelp) }
    ) { fixed, _ in fixed }

    static var droppedHelp: String {
        let perQueue = DropReason.allCases.filter { $0.stage == .receive }.map(\.name).joined(separator: ", ")
        return "Packets dropped after the probe received them, by reason: \(perQueue) per receive queue, "
            + "the others per transmit worker."
    }

    private static let fixedHelp: [String: String] = [
        "fastcapa_build_info": "fastcapa's version and the DPDK and librdkafka it runs with; always 1.",
        "fastcapa_received_packets_total": "Packets a receive worker took from its NIC queue.",
        "fastcapa_received_bytes_total": "Bytes of the packets received.",
        "fastcapa_enqueued_packets_total": "Packets the transmit ring accepted.",
        "fastcapa_ring_depth": "Packets waiting in the transmit ring.",
        "fastcapa_ring_capacity": "Packets the transmit ring holds when full.",
        "fastcapa_produced_packets_total": "Packets handed to librdkafka.",
        "fastcapa_flow_cutoff_bytes_total": "Bytes (original lengths) of the packets past their flow's cutoff.",
        "fastcapa_flow_table_full_packets_total":
            "Packets of new flows the full flow table could not track: kept, and not counted in any flow.",
        "fastcapa_flows_created_total": "Flows started: new ones, and ones seen again after their timeout.",
        "fastcapa_flows_expired_total": "Flows forgotten after their timeout.",
        "fastcapa_flows_active": "Flows in the receive queue's table.",
        "fastcapa_flow_table_capacity": "Flows the receive queue's table holds (--flow-table-size).",
        "fastcapa_flow_table_fill_ratio": "Flows in the receive queue's table over the flows it holds.",
        "fastcapa_duplicate_evicted_frames_total":
            "Frames the duplicate window forgot while still inside it (too small a --dedup-table-size): a later copy of one is delivered.",
        "fastcapa_capture_clock_held_reads_total":
            "Capture-clock reads that kept the time already shown because the system clock was behind it (a step back).",
        "fastcapa_delivered_packets_total": "Packets Kafka acknowledged.",
        "fastcapa_delivered_bytes_total": "Bytes Kafka acknowledged.",
        "fastcapa_truncated_packets_total": "Packets published cut to the snap length.",
        "fastcapa_reproduced_packets_total": "Packets produced again to a new producer after a restart or reload.",
        "fastcapa_bundles_sent_total": "Bundles (--bundle-packets) librdkafka took; their packets count as produced.",
        "fastcapa_producer_restarts_total": "Producers replaced after a fatal error.",
        "fastcapa_reloads_refused_total":
            "SIGHUPs whose configuration was refused (unreadable, no brokers, refused by librdkafka or DPDK): nothing of it applied.",
        "fastcapa_kafka_queue_messages":
            "Packets in librdkafka's queue (one per message, or each bundle's), awaiting a delivery report.",
        "fastcapa_producer_state": "1 for the producer's current health state, 0 for the others.",
        "fastcapa_broker_round_trip_seconds":
            "The slowest broker's average round trip in librdkafka's latest statistics (absent before the first).",
        "fastcapa_nic_received_packets_total": "Packets the port received (ipackets).",
        "fastcapa_nic_received_bytes_total": "Bytes the port received (ibytes).",
        "fastcapa_nic_missed_packets_total": "Packets the port dropped for lack of descriptors (imissed).",
        "fastcapa_nic_no_mbuf_packets_total": "Packets the port dropped for lack of packet buffers (rx_nombuf).",
        "fastcapa_nic_error_packets_total": "Frames the port received in error (ierrors).",
        "fastcapa_nic_kernel_dropped_packets_total":
            "Frames a kernel interface's packet sockets dropped before the driver read them (net_pcap, net_af_packet).",
        "fastcapa_nic_link_up":
            "1 when the port's link is up: DPDK's link state and, on a kernel interface, the interface's (up, with a carrier).",
        "fastcapa_nic_link_speed_bytes_per_second":
            "The port's link speed (absent when the device does not say, or the link is down).",
        "fastcapa_nic_idle_seconds":
            "Seconds since the port last received a packet (since capture started, when it has received none).",
        "fastcapa_embedded_broker":
            "1 when no Kafka broker is configured and the probe publishes to its embedded broker, in its own memory.",
        "fastcapa_delivery_latency_seconds": "Capture time (the message key) to delivery report.",
        "fastcapa_output_lines_total": "Lines written to the statistics file (-s) or the counter trace.",
        "fastcapa_output_lost_lines_total":
            "Lines the statistics file (-s) or the counter trace could not take, by reason: write_error (a full disk, a reader gone), queue_full, stop_timeout (still queued when the stop's time for the files ran out).",
    ]

    /// The values of `fastcapa_producer_state`'s `state` label.
    static let stateNames = ["healthy", "degraded", "restarting", "unhealthy"]

    static func name(_ state: HealthState) -> String {
        switch state {
        case .healthy: "healthy"
        case .degraded: "degraded"
        case .restarting: "restarting"
        case .unhealthy: "unhealthy"
        }
    }

    /// One labelled histogram's lines in the text format, from per-range bucket counts.
    static func histogramLines(_ name: String, labels: [(String, String)], _ latency: LatencyHistogram) -> [String] {
        let base = labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",")
        var lines: [String] = []
        var cumulative: UInt64 = 0
        for (bound, count) in zip(LatencyHistogram.bounds, latency.buckets) {
            cumulative += count
            lines.append("\(name)_bucket{\(base),le=\"\(bound)\"} \(cumulative)")
        }
        lines.append("\(name)_bucket{\(base),le=\"+Inf\"} \(latency.count)")
        lines.append("\(name)_sum{\(base)} \(latency.sumSeconds)")
        lines.append("\(name)_count{\(base)} \(latency.count)")
        return lines
    }
}
