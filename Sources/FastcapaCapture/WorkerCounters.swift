import CDPDK
import Glibc

/// Per-lcore counters in cache-line-aligned memory outside the Swift heap.
///
/// Each worker writes only its own slot with relaxed stores; the statistics
/// reader samples all of them with relaxed loads. No slot shares a cache line
/// with another, so workers never contend.
public final class CounterBlock<Counters>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Counters>
    public let count: Int

    public init(count: Int) {
        precondition(MemoryLayout<Counters>.stride % 64 == 0, "counters must fill whole cache lines")
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Counters>.stride
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("out of memory for \(count) counters") }
        memset(raw, 0, bytes)
        base = raw.bindMemory(to: Counters.self, capacity: max(count, 1))
    }

    public subscript(index: Int) -> UnsafeMutablePointer<Counters> { base + index }

    deinit { free(base) }
}


extension cfc_rx_counters {
    /// A consistent-enough copy for reporting (each field read atomically).
    public static func sample(_ pointer: UnsafeMutablePointer<cfc_rx_counters>) -> ReceiveCounts {
        ReceiveCounts(
            received: cfc_counter_load(&pointer.pointee.received),
            receivedBytes: cfc_counter_load(&pointer.pointee.received_bytes),
            enqueued: cfc_counter_load(&pointer.pointee.enqueued),
            ringFullDrops: cfc_counter_load(&pointer.pointee.ring_full_drops),
            bursts: cfc_counter_load(&pointer.pointee.bursts),
            fullBursts: cfc_counter_load(&pointer.pointee.full_bursts),
            ringFullWaits: cfc_counter_load(&pointer.pointee.ring_full_waits))
    }
}

extension cfc_tx_counters {
    public static func sample(_ pointer: UnsafeMutablePointer<cfc_tx_counters>) -> TransmitCounts {
        TransmitCounts(
            dequeued: cfc_counter_load(&pointer.pointee.dequeued),
            produced: cfc_counter_load(&pointer.pointee.produced),
            producedBytes: cfc_counter_load(&pointer.pointee.produced_bytes),
            delivered: cfc_counter_load(&pointer.pointee.delivered),
            deliveredBytes: cfc_counter_load(&pointer.pointee.delivered_bytes),
            deliveryFailed: cfc_counter_load(&pointer.pointee.delivery_failed),
            queueFullDrops: cfc_counter_load(&pointer.pointee.queue_full_drops),
            tooLargeDrops: cfc_counter_load(&pointer.pointee.too_large_drops),
            produceErrorDrops: cfc_counter_load(&pointer.pointee.produce_error_drops),
            truncated: cfc_counter_load(&pointer.pointee.truncated),
            queueFullRetries: cfc_counter_load(&pointer.pointee.queue_full_retries),
            drainTimeoutDrops: cfc_counter_load(&pointer.pointee.drain_timeout_drops),
            malformedDrops: cfc_counter_load(&pointer.pointee.malformed_drops),
            reproduced: cfc_counter_load(&pointer.pointee.reproduced),
            pausedPolls: cfc_counter_load(&pointer.pointee.paused_polls),
            nullSinkDrops: cfc_counter_load(&pointer.pointee.null_sink_drops),
            latency: LatencyHistogram(pointer))
    }
}

public struct ReceiveCounts: Sendable, Equatable {
    public var received: UInt64 = 0
    public var receivedBytes: UInt64 = 0
    public var enqueued: UInt64 = 0
    public var ringFullDrops: UInt64 = 0
    public var bursts: UInt64 = 0
    public var fullBursts: UInt64 = 0
    public var ringFullWaits: UInt64 = 0

    public static func + (a: Self, b: Self) -> Self {
        ReceiveCounts(
            received: a.received + b.received, receivedBytes: a.receivedBytes + b.receivedBytes,
            enqueued: a.enqueued + b.enqueued, ringFullDrops: a.ringFullDrops + b.ringFullDrops,
            bursts: a.bursts + b.bursts, fullBursts: a.fullBursts + b.fullBursts,
            ringFullWaits: a.ringFullWaits + b.ringFullWaits)
    }
}

public struct TransmitCounts: Sendable, Equatable {
    public var dequeued: UInt64 = 0
    public var produced: UInt64 = 0
    public var producedBytes: UInt64 = 0
    public var delivered: UInt64 = 0
    public var deliveredBytes: UInt64 = 0
    public var deliveryFailed: UInt64 = 0
    public var queueFullDrops: UInt64 = 0
    public var tooLargeDrops: UInt64 = 0
    public var produceErrorDrops: UInt64 = 0
    public var truncated: UInt64 = 0
    public var queueFullRetries: UInt64 = 0
    public var drainTimeoutDrops: UInt64 = 0
    public var malformedDrops: UInt64 = 0
    /// Failed in a retired producer and produced again to its successor.
    public var reproduced: UInt64 = 0
    public var pausedPolls: UInt64 = 0
    public var nullSinkDrops: UInt64 = 0
    public var latency = LatencyHistogram()

    /// Produced, and neither delivered nor failed yet.
    public var inFlight: UInt64 { produced &- delivered &- deliveryFailed }

    public static func + (a: Self, b: Self) -> Self {
        TransmitCounts(
            dequeued: a.dequeued + b.dequeued, produced: a.produced + b.produced,
            producedBytes: a.producedBytes + b.producedBytes, delivered: a.delivered + b.delivered,
            deliveredBytes: a.deliveredBytes + b.deliveredBytes, deliveryFailed: a.deliveryFailed + b.deliveryFailed,
            queueFullDrops: a.queueFullDrops + b.queueFullDrops, tooLargeDrops: a.tooLargeDrops + b.tooLargeDrops,
            produceErrorDrops: a.produceErrorDrops + b.produceErrorDrops, truncated: a.truncated + b.truncated,
            queueFullRetries: a.queueFullRetries + b.queueFullRetries,
            drainTimeoutDrops: a.drainTimeoutDrops + b.drainTimeoutDrops,
            malformedDrops: a.malformedDrops + b.malformedDrops,
            reproduced: a.reproduced + b.reproduced, pausedPolls: a.pausedPolls + b.pausedPolls,
            nullSinkDrops: a.nullSinkDrops + b.nullSinkDrops,
            latency: a.latency + b.latency)
    }
}

/// Delivery latency (capture time → delivery report) in fixed buckets.
public struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds in seconds.
    public static let bounds: [Double] = (0..<Int(CFC_LATENCY_BUCKETS)).map { Double(cfc_latency_bound_us(UInt32($0))) / 1e6 }
    /// Counts per range (not cumulative).
    public var buckets = [UInt64](repeating: 0, count: Int(CFC_LATENCY_BUCKETS))
    public var count: UInt64 = 0
    public var sumSeconds: Double = 0

    public init() {}

    init(_ pointer: UnsafeMutablePointer<cfc_tx_counters>) {
        withUnsafeMutablePointer(to: &pointer.pointee.latency_buckets) { tuple in
            tuple.withMemoryRebound(to: UInt64.self, capacity: Int(CFC_LATENCY_BUCKETS)) { base in
                buckets = (0..<Int(CFC_LATENCY_BUCKETS)).map { cfc_counter_load(base + $0) }
            }
        }
        count = cfc_counter_load(&pointer.pointee.latency_count)
        sumSeconds = Double(cfc_counter_load(&pointer.pointee.latency_sum_us)) / 1e6
    }

    public static func + (a: Self, b: Self) -> Self {
        var sum = a
        for index in sum.buckets.indices { sum.buckets[index] += b.buckets[index] }
        sum.count += b.count
        sum.sumSeconds += b.sumSeconds
        return sum
    }
}
