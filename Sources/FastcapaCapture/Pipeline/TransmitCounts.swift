import CFastcapaShared

/// A transmit worker's counters at one moment.
package struct TransmitCounts: Sendable, Equatable {
    package var dequeued: UInt64 = 0
    package var produced: UInt64 = 0
    package var producedBytes: UInt64 = 0
    package var delivered: UInt64 = 0
    package var deliveredBytes: UInt64 = 0
    package var truncated: UInt64 = 0
    package var queueFullRetries: UInt64 = 0
    /// Failed in a retired producer and produced again to its successor.
    package var reproduced: UInt64 = 0
    package var pausedPolls: UInt64 = 0
    /// Bundles librdkafka took, and those delivered (`--bundle-packets`; the packet counters count their packets).
    package var bundlesProduced: UInt64 = 0
    package var bundlesDelivered: UInt64 = 0
    /// The drops counted per transmit worker (`DropReason.Stage.transmit` and `.delivery`); the others are 0.
    package var drops = ReasonCounts<DropReason>()
    package var latency = LatencyHistogram()

    package init() {}

    /// A copy for reporting (each field read atomically, one after another).
    package init(sampling pointer: UnsafeMutablePointer<fastcapa_tx_counters>) {
        dequeued = fastcapa_counter_load(&pointer.pointee.dequeued)
        produced = fastcapa_counter_load(&pointer.pointee.produced)
        producedBytes = fastcapa_counter_load(&pointer.pointee.produced_bytes)
        delivered = fastcapa_counter_load(&pointer.pointee.delivered)
        deliveredBytes = fastcapa_counter_load(&pointer.pointee.delivered_bytes)
        truncated = fastcapa_counter_load(&pointer.pointee.truncated)
        queueFullRetries = fastcapa_counter_load(&pointer.pointee.queue_full_retries)
        reproduced = fastcapa_counter_load(&pointer.pointee.reproduced)
        pausedPolls = fastcapa_counter_load(&pointer.pointee.paused_polls)
        bundlesProduced = fastcapa_counter_load(&pointer.pointee.bundles_produced)
        bundlesDelivered = fastcapa_counter_load(&pointer.pointee.bundles_delivered)
        drops = ReasonCounts(sampling: pointer) { $0.transmitCounter }
        latency = LatencyHistogram(sampling: pointer)
    }

    package static func + (a: Self, b: Self) -> Self {
        var sum = a
        sum.dequeued += b.dequeued
        sum.produced += b.produced
        sum.producedBytes += b.producedBytes
        sum.delivered += b.delivered
        sum.deliveredBytes += b.deliveredBytes
        sum.truncated += b.truncated
        sum.queueFullRetries += b.queueFullRetries
        sum.reproduced += b.reproduced
        sum.pausedPolls += b.pausedPolls
        sum.bundlesProduced += b.bundlesProduced
        sum.bundlesDelivered += b.bundlesDelivered
        sum.drops = a.drops + b.drops
        sum.latency = a.latency + b.latency
        return sum
    }

    /// Packets per bundle sent, on average (0 when none was).
    package var bundleMeanPackets: Double {
        bundlesProduced == 0 ? 0 : Double(produced) / Double(bundlesProduced)
    }
}
