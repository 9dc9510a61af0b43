/// Every counter at one moment, summed and per worker.
package struct CaptureSnapshot: Sendable {
    package var perQueue: [ReceiveCounts]
    package var perWorker: [TransmitCounts]
    package var nic: Port.Statistics
    package var ringDepth: Int

    package init(perQueue: [ReceiveCounts], perWorker: [TransmitCounts], nic: Port.Statistics, ringDepth: Int) {
        self.perQueue = perQueue
        self.perWorker = perWorker
        self.nic = nic
        self.ringDepth = ringDepth
    }

    package var rx: ReceiveCounts { perQueue.reduce(ReceiveCounts(), +) }
    package var tx: TransmitCounts { perWorker.reduce(TransmitCounts(), +) }

    /// Packets dropped after the probe received them, by reason.
    package var drops: [(reason: String, count: UInt64)] {
        let rx = self.rx
        let tx = self.tx
        return [
            ("ring_full", rx.ringFullDrops), ("queue_full", tx.queueFullDrops), ("too_large", tx.tooLargeDrops),
            ("produce_error", tx.produceErrorDrops), ("delivery_failed", tx.deliveryFailed),
            ("drain_timeout", tx.drainTimeoutDrops), ("malformed", tx.malformedDrops), ("null_sink", tx.nullSinkDrops),
        ]
    }

    package var dropped: UInt64 { drops.reduce(0) { $0 + $1.count } }

    /// Received, not yet delivered nor dropped: in a ring, or produced and awaiting its report.
    package var inFlight: UInt64 {
        let rx = self.rx
        let tx = self.tx
        return (rx.enqueued &- tx.dequeued) &+ tx.inFlight
    }

    /// received = filtered + delivered + dropped + in flight. Filtered packets
    /// are the capture filter's choice, not a loss: they are no drop reason.
    package var balances: Bool { rx.received == rx.filtered &+ tx.delivered &+ dropped &+ inFlight }
}
