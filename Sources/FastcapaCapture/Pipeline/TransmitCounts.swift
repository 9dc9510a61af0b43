import CFastcapaShared

/// A transmit worker's counters at one moment.
package struct TransmitCounts: Sendable, Equatable {
    package var dequeued: UInt64 = 0
    package var produced: UInt64 = 0
    package var producedBytes: UInt64 = 0
    package var delivered: UInt64 = 0
    package var deliveredBytes: UInt64 = 0
    package var deliveryFailed: UInt64 = 0
    package var queueFullDrops: UInt64 = 0
    package var tooLargeDrops: UInt64 = 0
    package var produceErrorDrops: UInt64 = 0
    package var truncated: UInt64 = 0
    package var queueFullRetries: UInt64 = 0
    package var drainTimeoutDrops: UInt64 = 0
    package var malformedDrops: UInt64 = 0
    /// Failed in a retired producer and produced again to its successor.
    package var reproduced: UInt64 = 0
    package var pausedPolls: UInt64 = 0
    package var nullSinkDrops: UInt64 = 0
    package var latency = LatencyHistogram()

    package init() {}

    /// A copy for reporting (each field read atomically, one after another).
    package init(sampling pointer: UnsafeMutablePointer<fastcapa_tx_counters>) {
        dequeued = fastcapa_counter_load(&pointer.pointee.dequeued)
        produced = fastcapa_counter_load(&pointer.pointee.produced)
        producedBytes = fastcapa_counter_load(&pointer.pointee.produced_bytes)
        delivered = fastcapa_counter_load(&pointer.pointee.delivered)
        deliveredBytes = fastcapa_counter_load(&pointer.pointee.delivered_bytes)
        deliveryFailed = fastcapa_counter_load(&pointer.pointee.delivery_failed)
        queueFullDrops = fastcapa_counter_load(&pointer.pointee.queue_full_drops)
        tooLargeDrops = fastcapa_counter_load(&pointer.pointee.too_large_drops)
        produceErrorDrops = fastcapa_counter_load(&pointer.pointee.produce_error_drops)
        truncated = fastcapa_counter_load(&pointer.pointee.truncated)
        queueFullRetries = fastcapa_counter_load(&pointer.pointee.queue_full_retries)
        drainTimeoutDrops = fastcapa_counter_load(&pointer.pointee.drain_timeout_drops)
        malformedDrops = fastcapa_counter_load(&pointer.pointee.malformed_drops)
        reproduced = fastcapa_counter_load(&pointer.pointee.reproduced)
        pausedPolls = fastcapa_counter_load(&pointer.pointee.paused_polls)
        nullSinkDrops = fastcapa_counter_load(&pointer.pointee.null_sink_drops)
        latency = LatencyHistogram(sampling: pointer)
    }

    package static func + (a: Self, b: Self) -> Self {
        var sum = a
        sum.dequeued += b.dequeued
        sum.produced += b.produced
        sum.producedBytes += b.producedBytes
        sum.delivered += b.delivered
        sum.deliveredBytes += b.deliveredBytes
        sum.deliveryFailed += b.deliveryFailed
        sum.queueFullDrops += b.queueFullDrops
        sum.tooLargeDrops += b.tooLargeDrops
        sum.produceErrorDrops += b.produceErrorDrops
        sum.truncated += b.truncated
        sum.queueFullRetries += b.queueFullRetries
        sum.drainTimeoutDrops += b.drainTimeoutDrops
        sum.malformedDrops += b.malformedDrops
        sum.reproduced += b.reproduced
        sum.pausedPolls += b.pausedPolls
        sum.nullSinkDrops += b.nullSinkDrops
        sum.latency = a.latency + b.latency
        return sum
    }
}
