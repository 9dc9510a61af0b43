import CFastcapaShared

/// A receive worker's counters at one moment.
package struct ReceiveCounts: Sendable, Equatable {
    package var received: UInt64 = 0
    package var receivedBytes: UInt64 = 0
    package var enqueued: UInt64 = 0
    package var bursts: UInt64 = 0
    package var fullBursts: UInt64 = 0
    package var ringFullWaits: UInt64 = 0
    /// The drops counted per receive queue (`DropReason.Stage.receive`); the others are 0.
    package var drops = ReasonCounts<DropReason>()
    /// Packets not published by the operator's choice (the capture filter's rejections): not drops.
    package var exclusions = ReasonCounts<ExclusionReason>()
    /// The bytes (original lengths) of the packets past their flow's cutoff.
    package var flowCutoffBytes: UInt64 = 0
    /// Packets of new flows a full flow table could not track (kept).
    package var flowTableFull: UInt64 = 0
    /// The flow table: flows in it now, flows started, flows forgotten after their timeout.
    package var flowsActive: UInt64 = 0
    package var flowsCreated: UInt64 = 0
    package var flowsExpired: UInt64 = 0
    /// Frames a full duplicate window forgot while they were still inside it.
    package var duplicateEvicted: UInt64 = 0
    /// Capture-clock reads that returned the time already shown, because the
    /// system clock was behind it (stepped back, or the counter ran fast).
    package var clockHeld: UInt64 = 0

    package init() {}

    /// A copy for reporting (each field read atomically, one after another).
    package init(sampling pointer: UnsafeMutablePointer<fastcapa_rx_counters>) {
        received = fastcapa_counter_load(&pointer.pointee.received)
        receivedBytes = fastcapa_counter_load(&pointer.pointee.received_bytes)
        enqueued = fastcapa_counter_load(&pointer.pointee.enqueued)
        bursts = fastcapa_counter_load(&pointer.pointee.bursts)
        fullBursts = fastcapa_counter_load(&pointer.pointee.full_bursts)
        ringFullWaits = fastcapa_counter_load(&pointer.pointee.ring_full_waits)
        drops = ReasonCounts(sampling: pointer) { $0.receiveCounter }
        exclusions = ReasonCounts(sampling: pointer) { $0.counter }
        flowCutoffBytes = fastcapa_counter_load(&pointer.pointee.flow_cutoff_bytes)
        flowTableFull = fastcapa_counter_load(&pointer.pointee.flow_table_full)
        flowsActive = fastcapa_counter_load(&pointer.pointee.flows_active)
        flowsCreated = fastcapa_counter_load(&pointer.pointee.flows_created)
        flowsExpired = fastcapa_counter_load(&pointer.pointee.flows_expired)
        duplicateEvicted = fastcapa_counter_load(&pointer.pointee.duplicate_evicted)
        clockHeld = fastcapa_counter_load(&pointer.pointee.clock_held)
    }

    package static func + (a: Self, b: Self) -> Self {
        var sum = a
        sum.received += b.received
        sum.receivedBytes += b.receivedBytes
        sum.enqueued += b.enqueued
        sum.bursts += b.bursts
        sum.fullBursts += b.fullBursts
        sum.ringFullWaits += b.ringFullWaits
        sum.drops = a.drops + b.drops
        sum.exclusions = a.exclusions + b.exclusions
        sum.flowCutoffBytes += b.flowCutoffBytes
        sum.flowTableFull += b.flowTableFull
        sum.flowsActive += b.flowsActive
        sum.flowsCreated += b.flowsCreated
        sum.flowsExpired += b.flowsExpired
        sum.duplicateEvicted += b.duplicateEvicted
        sum.clockHeld += b.clockHeld
        return sum
    }
}
