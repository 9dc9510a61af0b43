import CDPDK
import Glibc

/// Where a capture clock reads time: a tick counter and the system's wall clock.
package protocol CaptureTimeSource {
    /// Ticks of a steady counter (the TSC).
    mutating func ticks() -> UInt64
    /// The system's wall clock, epoch microseconds (CLOCK_REALTIME: NTP may step or slew it).
    mutating func wallMicros() -> UInt64
}

/// The TSC and CLOCK_REALTIME.
package struct TscTimeSource: CaptureTimeSource {
    package init() {}
    @inline(__always) package func ticks() -> UInt64 { CDPDK_rte_rdtsc() }
    package func wallMicros() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}

/// Wall-clock time in epoch microseconds, read from a tick counter (the TSC),
/// that never goes backwards.
///
/// A receive worker reads it once per receive burst for devices that do not
/// stamp packets themselves; each worker owns its clock (no sharing, no locks).
/// Ticks become microseconds with a 32.32 fixed-point multiply (no overflow, no
/// division). Once a second of ticks the clock compares itself with the system
/// clock and slews rather than steps: it learns the counter's real rate from the
/// last interval (within ±`maxRateError`), and corrects the offset it has
/// accumulated over the next second by at most `maxSlewMicrosPerSecond`. Each
/// re-anchoring starts from the time the clock itself showed, so what it returns
/// never decreases while the counter does not. Only a wall clock ahead by more
/// than `stepThresholdMicros` is followed at once (forward: still never backwards);
/// one behind (an NTP step back) is slewed towards at the bounded rate.
package struct CaptureClock<Source: CaptureTimeSource> {
    private var source: Source
    private let ticksPerSecond: UInt64
    /// Microseconds per tick (32.32 fixed point): nominal, and as used now.
    private let nominalQ32: UInt64
    private var rateQ32: UInt64
    private var anchorTicks: UInt64 = 0
    private var anchorMicros: UInt64 = 0
    /// The last comparison with the system clock, to learn the counter's rate.
    private var syncTicks: UInt64 = 0
    private var syncWall: UInt64 = 0
    /// The highest time returned, so that it never decreases even if the counter does.
    private var last: UInt64 = 0

    /// At most this many µs of offset corrected per second (1 %).
    package static var maxSlewMicrosPerSecond: UInt64 { 10_000 }
    /// The counter's learned rate stays within this fraction of the nominal one (1 %).
    package static var maxRateErrorPpm: UInt64 { 10_000 }
    /// A wall clock further ahead than this is followed at once.
    package static var stepThresholdMicros: UInt64 { 1_000_000 }

    package init(source: Source, ticksPerSecond: UInt64) {
        self.source = source
        self.ticksPerSecond = max(ticksPerSecond, 1)
        nominalQ32 = (1_000_000 << 32) / self.ticksPerSecond
        rateQ32 = nominalQ32
        let ticks = self.source.ticks()
        let wall = self.source.wallMicros()
        anchorTicks = ticks
        anchorMicros = wall
        syncTicks = ticks
        syncWall = wall
        last = wall
    }

    @inline(__always)
    package mutating func nowMicros() -> UInt64 {
        let ticks = source.ticks()
        var elapsed = ticks &- anchorTicks
        if elapsed >= ticksPerSecond && elapsed < 1 << 63 {
            resynchronize(at: ticks)
            elapsed = 0
        }
        let now = anchorMicros &+ Self.scale(elapsed < 1 << 63 ? elapsed : 0, by: rateQ32)
        if now > last { last = now }
        return last
    }

    /// `ticks * factorQ32 >> 32` without overflow.
    @inline(__always)
    static func scale(_ ticks: UInt64, by factorQ32: UInt64) -> UInt64 {
        let product = ticks.multipliedFullWidth(by: factorQ32)
        return (product.high << 32) | (product.low >> 32)
    }

    /// Re-anchors at the time the clock shows now, with a rate that closes the
    /// gap to the system clock over the next second, within the bounds.
    private mutating func resynchronize(at ticks: UInt64) {
        let shown = max(anchorMicros &+ Self.scale(ticks &- anchorTicks, by: rateQ32), last)
        let wall = source.wallMicros()
        // The counter's rate over the last interval, within bounds of the nominal one.
        let interval = ticks &- syncTicks
        var learned = rateQ32
        if interval > 0, wall > syncWall, wall - syncWall < 1 << 30 {
            let measured = ((wall - syncWall) << 32) / interval
            let bound = nominalQ32 * Self.maxRateErrorPpm / 1_000_000
            learned = min(max(measured, nominalQ32 - bound), nominalQ32 + bound)
        }
        syncTicks = ticks
        syncWall = wall
        anchorTicks = ticks
        if wall > shown && wall - shown > Self.stepThresholdMicros {
            // Far behind the system clock (started late, or NTP stepped it forward): catch up at once.
            anchorMicros = wall
            rateQ32 = learned
            last = max(last, wall)
            return
        }
        anchorMicros = shown
        // Close the offset over the next second, at most maxSlew µs of it.
        let correction = min(wall > shown ? wall - shown : shown - wall, Self.maxSlewMicrosPerSecond)
        let correctionQ32 = (correction << 32) / ticksPerSecond
        rateQ32 = wall > shown ? learned + correctionQ32 : learned - min(correctionQ32, learned / 2)
    }
}

extension CaptureClock where Source == TscTimeSource {
    /// The TSC, at DPDK's measured frequency, against CLOCK_REALTIME.
    package init() {
        self.init(source: TscTimeSource(), ticksPerSecond: rte_get_tsc_hz())
    }
}
