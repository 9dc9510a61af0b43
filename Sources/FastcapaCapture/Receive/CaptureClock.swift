import CDPDK
import Glibc

/// Wall-clock time in epoch microseconds, read from the TSC.
///
/// A receive worker reads it once per burst for devices that do not stamp
/// packets themselves. Each worker owns its clock (no sharing, no locks) and
/// re-anchors it to the system clock once a second, so TSC drift never
/// accumulates beyond a second's worth. It never steps back: when the TSC ran
/// ahead of the system clock, a re-anchor holds the time until the system clock
/// catches up, so a queue's keys stay in capture order; only a system clock set
/// back by more than a second is followed.
package struct CaptureClock {
    private var anchorTsc: UInt64 = 0
    private var anchorMicros: UInt64 = 0
    /// The latest time handed out.
    private var lastMicros: UInt64 = 0
    /// A system clock set back by more than this is followed, not waited for.
    static let largestHeldStep: UInt64 = 1_000_000
    private let ticksPerSecond: UInt64
    /// Microseconds per tick as a 32.32 fixed-point number.
    private let microsPerTickQ32: UInt64

    package init(ticksPerSecond: UInt64 = rte_get_tsc_hz()) {
        self.ticksPerSecond = max(ticksPerSecond, 1)
        self.microsPerTickQ32 = (1_000_000 << 32) / self.ticksPerSecond
        anchor(at: CDPDK_rte_rdtsc())
    }

    @inline(__always)
    package mutating func nowMicros() -> UInt64 {
        let tsc = CDPDK_rte_rdtsc()
        var elapsed = tsc &- anchorTsc
        if elapsed >= ticksPerSecond {
            anchor(at: tsc)
            elapsed = 0
        }
        let now = anchorMicros &+ Self.scale(elapsed, by: microsPerTickQ32)
        if now > lastMicros { lastMicros = now }
        return lastMicros
    }

    /// `ticks * factorQ32 >> 32` without overflow.
    @inline(__always)
    static func scale(_ ticks: UInt64, by factorQ32: UInt64) -> UInt64 {
        let product = ticks.multipliedFullWidth(by: factorQ32)
        return (product.high << 32) | (product.low >> 32)
    }

    private mutating func anchor(at tsc: UInt64) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        anchorTsc = tsc
        anchorMicros = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        if anchorMicros &+ Self.largestHeldStep < lastMicros { lastMicros = anchorMicros }
    }
}
