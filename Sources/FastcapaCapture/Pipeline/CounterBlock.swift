import Glibc

/// Per-lcore counters in cache-line-aligned memory outside the Swift heap.
///
/// Each worker writes only its own slot with relaxed stores; the statistics
/// reader samples all of them with relaxed loads. No slot shares a cache line
/// with another, so workers never contend.
package final class CounterBlock<Counters>: @unchecked Sendable {
    package let base: UnsafeMutablePointer<Counters>
    package let count: Int

    package init(count: Int) {
        precondition(MemoryLayout<Counters>.stride % 64 == 0, "counters must fill whole cache lines")
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Counters>.stride
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("out of memory for \(count) counters") }
        memset(raw, 0, bytes)
        base = raw.bindMemory(to: Counters.self, capacity: max(count, 1))
    }

    package subscript(index: Int) -> UnsafeMutablePointer<Counters> { base + index }

    deinit { free(base) }
}
