import CFastcapaShared

/// A receive worker's counters at one moment.
package struct ReceiveCounts: Sendable, Equatable {
    package var received: UInt64 = 0
    package var receivedBytes: UInt64 = 0
    package var enqueued: UInt64 = 0
    package var ringFullDrops: UInt64 = 0
    package var bursts: UInt64 = 0
    package var fullBursts: UInt64 = 0
    package var ringFullWaits: UInt64 = 0
    /// Rejected by the capture filter: freed on the lcore, not a drop.
    package var filtered: UInt64 = 0

    package init() {}

    /// A copy for reporting (each field read atomically, one after another).
    package init(sampling pointer: UnsafeMutablePointer<fastcapa_rx_counters>) {
        received = fastcapa_counter_load(&pointer.pointee.received)
        receivedBytes = fastcapa_counter_load(&pointer.pointee.received_bytes)
        enqueued = fastcapa_counter_load(&pointer.pointee.enqueued)
        ringFullDrops = fastcapa_counter_load(&pointer.pointee.ring_full_drops)
        bursts = fastcapa_counter_load(&pointer.pointee.bursts)
        fullBursts = fastcapa_counter_load(&pointer.pointee.full_bursts)
        ringFullWaits = fastcapa_counter_load(&pointer.pointee.ring_full_waits)
        filtered = fastcapa_counter_load(&pointer.pointee.filtered)
    }

    package static func + (a: Self, b: Self) -> Self {
        var sum = a
        sum.received += b.received
        sum.receivedBytes += b.receivedBytes
        sum.enqueued += b.enqueued
        sum.ringFullDrops += b.ringFullDrops
        sum.bursts += b.bursts
        sum.fullBursts += b.fullBursts
        sum.ringFullWaits += b.ringFullWaits
        sum.filtered += b.filtered
        return sum
    }
}
