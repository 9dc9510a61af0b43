import FastcapaKafka

/// Every counter at one moment, summed and per worker, with what the rings and
/// librdkafka hold as measured (not derived from the counters).
package struct CaptureSnapshot: Sendable {
    package var perQueue: [ReceiveCounts]
    package var perWorker: [TransmitCounts]
    package var nic: Port.Statistics
    /// Each port's NIC counters (their sum is `nic`), by port id.
    package var perPort: [(port: UInt16, statistics: Port.Statistics)]
    /// Each port's link and how long it has received nothing.
    package var links: [Port.Link]
    /// Packets in each transmit ring (rte_ring_count).
    package var ringDepths: [Int]
    /// Each worker's current producer as the sampler read it (librdkafka's queue
    /// length, the rescue buffer, health inputs).
    package var producers: [ProducerSample]
    /// Replacements each worker's owner thread carried out.
    package var restarts: [Int]
    package var reloads: [Int]
    /// The transmit lcores have returned: no worker holds a packet any more.
    package var workersStopped: Bool
    /// Each worker lcore's heartbeat (systemd's watchdog is told the probe lives while they move).
    package var lcores: [LcoreProgress]
    /// The exclusions this run can count, for the statistics table: the capture filter's always,
    /// `flow_cutoff` and `duplicate` when their tables were made at start.
    package var activeExclusions: [ExclusionReason] = ExclusionReason.allCases

    package init(
        perQueue: [ReceiveCounts],
        perWorker: [TransmitCounts],
        nic: Port.Statistics = Port.Statistics(),
        perPort: [(port: UInt16, statistics: Port.Statistics)] = [],
        links: [Port.Link] = [],
        ringDepths: [Int] = [],
        producers: [ProducerSample] = [],
        restarts: [Int] = [],
        reloads: [Int] = [],
        workersStopped: Bool = false,
        lcores: [LcoreProgress] = []
    ) {
        self.perQueue = perQueue
        self.perWorker = perWorker
        self.nic = nic
        self.perPort = perPort
        self.links = links
        self.ringDepths = ringDepths
        self.producers = producers
        self.restarts = restarts
        self.reloads = reloads
        self.workersStopped = workersStopped
        self.lcores = lcores
    }

    package var rx: ReceiveCounts { perQueue.reduce(ReceiveCounts(), +) }
    package var tx: TransmitCounts { perWorker.reduce(TransmitCounts(), +) }
    package var ringDepth: Int { ringDepths.reduce(0, +) }
    /// Messages librdkafka holds, awaiting a report, in every current producer.
    package var kafkaQueued: Int { producers.reduce(0) { $0 + $1.kafkaQueued } }
    /// Messages failed by a producer and kept for its successor.
    package var kept: Int { producers.reduce(0) { $0 + $1.kept } }

    /// Packets dropped after the probe received them, by reason.
    package var drops: ReasonCounts<DropReason> { rx.drops + tx.drops }

    package var dropped: UInt64 { drops.total }

    /// Packets not published by the operator's choice, by reason: not drops.
    package var exclusions: ReasonCounts<ExclusionReason> { rx.exclusions }

    /// Packets a transmit worker took off its ring and has neither handed to
    /// librdkafka nor dropped (a burst kept for a failed producer's successor).
    /// Once the workers have returned this is 0 by construction; while they run it
    /// is derived from their counters, sampled one by one (so it may be off by what
    /// moved meanwhile, in either direction: it is signed, never wrapped).
    package var held: Int {
        guard !workersStopped else { return 0 }
        let tx = self.tx
        return Int(truncatingIfNeeded: tx.dequeued &- tx.produced &- tx.drops.total(.transmit))
    }

    /// Received, not yet delivered nor dropped, as measured where packets wait: in
    /// a ring, held by a worker, in librdkafka's queue, or kept for a successor.
    /// Independent of the delivery counters, so that a miscounted delivery report
    /// shows as an imbalance. Exact after a stop; while the probe runs, the parts
    /// are sampled one after another and a producer being retired is not counted.
    package var inFlight: Int { ringDepth + held + kafkaQueued + kept }

    /// received − (excluded + delivered + dropped + in flight): 0 when the books balance.
    package var imbalance: Int {
        let rx = self.rx
        let tx = self.tx
        return Int(truncatingIfNeeded: rx.received &- rx.exclusions.total &- tx.delivered &- dropped) - inFlight
    }

    /// received = excluded (filtered) + delivered + dropped + in flight. Excluded
    /// packets are the operator's choice, not a loss: they are no drop reason.
    package var balances: Bool { imbalance == 0 }
}
