import FastcapaCapture
import FastcapaSupervision
import Foundation
import Prometheus
import Synchronization

/// Turns the monitor's latest snapshot into Prometheus metrics.
///
/// Counters and gauges live in a swift-prometheus registry (which swift-metrics
/// is bootstrapped onto, so library metrics land there too). Counters are set
/// from the snapshot's totals at each scrape. The delivery-latency histogram is
/// kept by the lcores in fixed buckets, so it is written out here as such. A
/// render reads nothing but the snapshot, so it is safe at any moment, during and
/// after the stop; renders are serialised (they reset and set shared counters).
package final class MetricsExporter: Sendable {
    package let registry: PrometheusCollectorRegistry
    private let monitor: PipelineMonitor
    private let queueLabels: [String]
    private let rendering = Mutex(())

    package init(pipeline: CapturePipeline, monitor: PipelineMonitor, registry: PrometheusCollectorRegistry) {
        self.monitor = monitor
        self.registry = registry
        queueLabels = pipeline.ports.flatMap { port in (0..<port.rxQueues).map { "\(port.id)/\($0)" } }
    }

    /// The Prometheus text exposition of the latest snapshot.
    package func render() -> String {
        rendering.withLock { _ in render(monitor.snapshot) }
    }

    private func render(_ latest: PipelineMonitor.Snapshot) -> String {
        let snapshot = latest.capture
        for (index, counts) in snapshot.perQueue.enumerated() where index < queueLabels.count {
            let labels = [("queue", queueLabels[index])]
            set(counter: "fastcapa_received_packets_total", labels, counts.received)
            set(counter: "fastcapa_received_bytes_total", labels, counts.receivedBytes)
            set(counter: "fastcapa_enqueued_packets_total", labels, counts.enqueued)
            set(counter: "fastcapa_ring_full_drops_total", labels, counts.ringFullDrops)
            set(counter: "fastcapa_filtered_packets_total", labels, counts.filtered)
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
            set(counter: "fastcapa_delivery_failed_total", labels, counts.deliveryFailed)
            set(counter: "fastcapa_reproduced_packets_total", labels, counts.reproduced)
            for (reason, count) in [
                ("queue_full", counts.queueFullDrops), ("too_large", counts.tooLargeDrops),
                ("produce_error", counts.produceErrorDrops), ("malformed", counts.malformedDrops),
                ("drain_timeout", counts.drainTimeoutDrops),
            ] {
                set(counter: "fastcapa_dropped_packets_total", labels + [("reason", reason)], count)
            }
            if index < snapshot.producers.count {
                let producer = snapshot.producers[index]
                gauge("fastcapa_kafka_queue_messages", labels).set(Double(producer.kafkaQueued))
                gauge("fastcapa_broker_round_trip_seconds", labels).set((producer.roundTripMs ?? 0) / 1000)
            }
            if index < snapshot.restarts.count {
                set(counter: "fastcapa_producer_restarts_total", labels, UInt64(snapshot.restarts[index]))
            }
            if index < latest.states.count {
                gauge("fastcapa_producer_state", labels).set(Double(Self.code(latest.states[index])))
            }
            histograms += Self.histogramLines("fastcapa_delivery_latency_seconds", labels: labels, counts.latency)
        }
        set(counter: "fastcapa_nic_received_packets_total", [], snapshot.nic.received)
        set(counter: "fastcapa_nic_missed_packets_total", [], snapshot.nic.missed)
        set(counter: "fastcapa_nic_no_mbuf_total", [], snapshot.nic.noMbuf)
        set(counter: "fastcapa_nic_errors_total", [], snapshot.nic.errors)
        set(counter: "fastcapa_nic_kernel_dropped_packets_total", [], snapshot.nic.kernelDropped)
        let header = [
            "# HELP fastcapa_delivery_latency_seconds \(Self.help["fastcapa_delivery_latency_seconds"]!)",
            "# TYPE fastcapa_delivery_latency_seconds histogram",
        ]
        let latency = histograms.isEmpty ? "" : (header + histograms).joined(separator: "\n") + "\n"
        return registry.emitToString() + latency
    }

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

    /// The `# HELP` text of every metric.
    static let help: [String: String] = [
        "fastcapa_received_packets_total": "Packets a receive worker took from its NIC queue.",
        "fastcapa_received_bytes_total": "Bytes of the packets received.",
        "fastcapa_enqueued_packets_total": "Packets the transmit ring accepted.",
        "fastcapa_ring_full_drops_total": "Packets dropped because the transmit ring was full.",
        "fastcapa_filtered_packets_total":
            "Packets the capture filter rejected (freed on the receive lcore; not a drop).",
        "fastcapa_ring_depth": "Packets waiting in the transmit ring.",
        "fastcapa_produced_packets_total": "Packets handed to librdkafka.",
        "fastcapa_delivered_packets_total": "Packets Kafka acknowledged.",
        "fastcapa_delivered_bytes_total": "Bytes Kafka acknowledged.",
        "fastcapa_delivery_failed_total": "Packets whose delivery failed and could not be produced again.",
        "fastcapa_reproduced_packets_total": "Packets produced again to a new producer after a restart or reload.",
        "fastcapa_dropped_packets_total": "Packets dropped by a transmit worker, by reason.",
        "fastcapa_producer_restarts_total": "Producers replaced after a fatal error.",
        "fastcapa_kafka_queue_messages": "Messages in librdkafka's queue, awaiting a delivery report.",
        "fastcapa_producer_state": "Producer health: 0 healthy, 1 degraded, 2 restarting, 3 unhealthy.",
        "fastcapa_broker_round_trip_seconds": "The slowest broker's average round trip in librdkafka's statistics.",
        "fastcapa_nic_received_packets_total": "Packets the NIC received (all ports).",
        "fastcapa_nic_missed_packets_total": "Packets the NIC dropped for lack of descriptors (imissed).",
        "fastcapa_nic_no_mbuf_total": "Packets the NIC dropped for lack of packet buffers (rx_nombuf).",
        "fastcapa_nic_errors_total": "Frames the NIC received in error (ierrors).",
        "fastcapa_nic_kernel_dropped_packets_total":
            "Frames a kernel interface's packet sockets dropped before the driver read them (net_pcap, net_af_packet).",
        "fastcapa_delivery_latency_seconds": "Capture time (the message key) to delivery report.",
    ]

    static func code(_ state: ProducerHealth.State) -> Int {
        switch state {
        case .healthy: 0
        case .degraded: 1
        case .restarting: 2
        case .unhealthy: 3
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
