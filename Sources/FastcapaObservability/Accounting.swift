import FastcapaCapture

/// The final accounting: every packet received is delivered or dropped with a reason.
package enum Accounting {
    package static func text(_ snapshot: CaptureSnapshot, health: HealthSummary) -> String {
        let rx = snapshot.rx
        let tx = snapshot.tx
        let nic = snapshot.nic
        let exclusions = snapshot.exclusions.all.map { "\($0.reason.name) \($0.count) + " }.joined()
        let reasons = snapshot.drops.all.map { "\($0.reason.name) \($0.count)" }.joined(separator: ", ")
        var lines = [
            "accounting: received \(rx.received) = \(exclusions)delivered \(tx.delivered) + dropped \(snapshot.dropped) (\(reasons)) + in flight \(snapshot.inFlight)"
                + (snapshot.balances ? "" : "  ** DOES NOT BALANCE ** (off by \(snapshot.imbalance))"),
            "accounting: delivered \(tx.deliveredBytes) bytes; truncated to the snap length \(tx.truncated)",
            "accounting: before the probe (NIC): missed \(nic.missed), no mbuf \(nic.noMbuf), errors \(nic.errors), "
                + "kernel dropped \(nic.kernelDropped) (not part of received)",
        ]
        lines.append(
            "accounting: producer restarts \(health.restarts), packets re-produced after a restart \(tx.reproduced); health \(health.state)"
        )
        if tx.bundlesProduced > 0 {
            lines.append(
                "accounting: bundles sent \(tx.bundlesProduced) (\(String(format: "%.1f", tx.bundleMeanPackets)) packets each on average), delivered \(tx.bundlesDelivered); the counts above are packets"
            )
        }
        lines.append("accounting-json: " + json(snapshot, health: health, final: true))
        return lines.joined(separator: "\n")
    }

    /// The accounting as JSON. `balanced` only in the `final` one: while the probe
    /// runs, the counters are sampled one by one and a producer being retired holds
    /// messages no snapshot counts, so a mid-run sum is approximate.
    package static func json(_ snapshot: CaptureSnapshot, health: HealthSummary, final: Bool) -> String {
        let rx = snapshot.rx
        let tx = snapshot.tx
        let nic = snapshot.nic
        let counts: [(String, UInt64)] =
            [("received", rx.received), ("received_bytes", rx.receivedBytes)]
            + snapshot.exclusions.all.map { ($0.reason.name, $0.count) }
            + [
                ("flow_cutoff_bytes", rx.flowCutoffBytes), ("flow_table_full", rx.flowTableFull),
                ("flows_created", rx.flowsCreated), ("flows_expired", rx.flowsExpired),
                ("flows_active", rx.flowsActive), ("duplicate_evicted", rx.duplicateEvicted),
                ("clock_held", rx.clockHeld), ("enqueued", rx.enqueued),
                ("dequeued", tx.dequeued), ("produced", tx.produced), ("delivered", tx.delivered),
                ("delivered_bytes", tx.deliveredBytes), ("dropped", snapshot.dropped),
                ("truncated", tx.truncated), ("queue_full_retries", tx.queueFullRetries),
                ("ring_full_waits", rx.ringFullWaits),
                ("reproduced", tx.reproduced), ("restarts", UInt64(health.restarts)),
                ("bundles_sent", tx.bundlesProduced), ("bundles_delivered", tx.bundlesDelivered),
                ("nic_received", nic.received), ("nic_missed", nic.missed), ("nic_no_mbuf", nic.noMbuf),
                ("nic_errors", nic.errors), ("nic_kernel_dropped", nic.kernelDropped),
            ]
            + snapshot.drops.all.map { ("drop_\($0.reason.name)", $0.count) }
        // Signed: a miscount shows as a negative in flight, never as a wrapped number.
        let measured: [(String, Int)] = [
            ("in_flight", snapshot.inFlight), ("ring_depth", snapshot.ringDepth),
            ("kafka_queued", snapshot.kafkaQueued), ("reloads", snapshot.reloads.reduce(0, +)),
        ]
        let mean = (tx.bundleMeanPackets * 100).rounded() / 100
        let fields =
            counts.map { ($0.0, "\($0.1)") } + measured.map { ($0.0, "\($0.1)") }
            + [("bundle_mean_packets", "\(mean)")]
        let arrays: [(String, [UInt64])] =
            [("received_per_queue", snapshot.perQueue.map(\.received))]
            + ExclusionReason.allCases.map { reason in
                ("\(reason.name)_per_queue", snapshot.perQueue.map { $0.exclusions[reason] })
            }
            + [("delivered_per_worker", snapshot.perWorker.map(\.delivered))]
        let lists = arrays.map { "\"\($0.0)\":[\($0.1.map { "\($0)" }.joined(separator: ","))]" }
        return "{" + (fields.map { "\"\($0.0)\":\($0.1)" } + lists).joined(separator: ",")
            + ",\"health\":\"\(health.state)\"" + (final ? ",\"balanced\":\(snapshot.balances)}" : "}")
    }
}
