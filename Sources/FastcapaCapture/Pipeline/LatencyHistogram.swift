import CFastcapaShared

/// Delivery latency (capture time → delivery report) in fixed buckets.
package struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds in seconds.
    package static let bounds: [Double] = (0..<Int(FASTCAPA_LATENCY_BUCKETS)).map {
        Double(fastcapa_latency_bound_us(UInt32($0))) / 1e6
    }
    /// Counts per range (not cumulative).
    package var buckets = [UInt64](repeating: 0, count: Int(FASTCAPA_LATENCY_BUCKETS))
    package var count: UInt64 = 0
    package var sumSeconds: Double = 0

    package init() {}

    init(sampling pointer: UnsafeMutablePointer<fastcapa_tx_counters>) {
        withUnsafeMutablePointer(to: &pointer.pointee.latency_buckets) { tuple in
            tuple.withMemoryRebound(to: UInt64.self, capacity: Int(FASTCAPA_LATENCY_BUCKETS)) { base in
                buckets = (0..<Int(FASTCAPA_LATENCY_BUCKETS)).map { fastcapa_counter_load(base + $0) }
            }
        }
        count = fastcapa_counter_load(&pointer.pointee.latency_count)
        sumSeconds = Double(fastcapa_counter_load(&pointer.pointee.latency_sum_us)) / 1e6
    }

    package static func + (a: Self, b: Self) -> Self {
        var sum = a
        for index in sum.buckets.indices { sum.buckets[index] += b.buckets[index] }
        sum.count += b.count
        sum.sumSeconds += b.sumSeconds
        return sum
    }
}
