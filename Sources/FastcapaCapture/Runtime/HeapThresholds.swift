import CLinux
import Glibc

/// glibc's allocator thresholds for a capture. librdkafka allocates a copy of
/// every message on the transmit lcore and a request buffer per batch on its
/// broker thread. Left to glibc's dynamic thresholds, the memory freed at the top
/// of a thread's heap goes back to the kernel and comes in again as new, zeroed
/// pages: at 512-byte frames the broker thread took 0.03–0.06 minor page faults
/// per message (Performance.md, "The default path at 512 bytes"). Fixed
/// thresholds keep that memory in the heaps for the next batch; what the process
/// uses at its peak is the same.
package enum HeapThresholds {
    /// Blocks up to this size come from the heaps, not from a mapping of their
    /// own (the ceiling of glibc's dynamic threshold on 64-bit hosts).
    package static let mmapThreshold: Int32 = 32 << 20
    /// Free memory at the top of a heap beyond this goes back to the kernel.
    package static let trimThreshold: Int32 = 256 << 20

    /// Whether to set them: not when `GLIBC_TUNABLES` sets any of the allocator's
    /// own (the operator's choice wins).
    package static func applies(tunables: String?) -> Bool {
        guard let tunables else { return true }
        return !tunables.contains("glibc.malloc.")
    }

    /// Sets both unless `GLIBC_TUNABLES` sets the allocator's; returns whether it did.
    @discardableResult
    package static func apply() -> Bool {
        let tunables = getenv("GLIBC_TUNABLES").map { String(cString: $0) }
        guard applies(tunables: tunables) else { return false }
        let mapped = CLinux_mallopt(CLinux_M_MMAP_THRESHOLD(), mmapThreshold)
        let trimmed = CLinux_mallopt(CLinux_M_TRIM_THRESHOLD(), trimThreshold)
        return mapped == 1 && trimmed == 1
    }
}
