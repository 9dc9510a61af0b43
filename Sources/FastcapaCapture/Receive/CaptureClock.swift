import CDPDK
import Glibc

/// Where a capture clock reads time: a tick counter and the system's wall clock.
package protocol CaptureTimeSource {
    /// Ticks of a steady counter (the TSC).
    mutating func ticks() -> UInt64
    /// The system's wall clock, epoch nanoseconds (CLOCK_REALTIME: NTP may step or slew it).
    mutating func wallNanos() -> UInt64
}

/// The TSC and CLOCK_REALTIME.
package struct TscTimeSource: CaptureTimeSource {
    package init() {}
    @inline(__always) package func ticks() -> UInt64 { CDPDK_rte_rdtsc() }
    package func wallNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }
}

/// The system clock (CLOCK_REALTIME) in epoch nanoseconds, read cheaply from
/// a tick counter (the TSC) between comparisons, and never going backwards.
///
/// A receive worker reads it once per receive burst for devices that do not
/// stamp packets themselves; each worker owns its clock (no sharing, no locks).
///
/// It compares itself with the system clock whenever `syncIntervalNanos` of
/// ticks have passed since it last did (so at the first read after any idle
/// spell), and takes the system clock's value then: what it shows is never
/// further from the system clock than the counter's rate error over one
/// interval (at most 1 % of 1 ms, 10 µs, before the rate is learned; about
/// nothing after). In between it adds ticks at the counter's rate, learned
/// against the system clock over intervals of a second or more (the TSC
/// frequency DPDK reports can be an estimate, on virtual machines above all).
///
/// What it returns never decreases: when the system clock is behind the last
/// value returned (NTP stepped it back, or the counter ran fast), it holds that
/// value until the system clock passes it, and counts each read it held
/// (`heldReads`). It never slews: the error while holding is at most the step
/// back, shrinking in real time, and nothing lags the system clock once it
/// has caught up.
package struct CaptureClock<Source: CaptureTimeSource> {
    private var source: Source
    /// Nanoseconds per tick (32.32 fixed point): nominal, and as learned.
    private let nominalQ32: UInt64
    private var rateQ32: UInt64
    /// Ticks in `syncIntervalNanos` and in `rateIntervalNanos`, at the nominal rate.
    private let syncTicks: UInt64
    private let rateTicks: UInt64
    /// The widest the counter's reads around a system-clock read may be apart (`bracketNanos`).
    private let bracketTicks: UInt64
    /// The last comparison with the system clock: ticks and its time then.
    private var anchorTicks: UInt64 = 0
    private var anchorNanos: UInt64 = 0
    /// The start of the interval over which the counter's rate is measured.
    private var rateBaseTicks: UInt64 = 0
    private var rateBaseNanos: UInt64 = 0
    /// The highest time returned.
    private var last: UInt64 = 0
    /// Reads that returned `last` because the time shown would have been below it.
    package private(set) var heldReads: UInt64 = 0

    /// The longest the clock runs on ticks alone before it compares itself with the system clock.
    package static var syncIntervalNanos: UInt64 { 1_000_000 }
    /// The shortest interval over which the counter's rate is measured.
    package static var rateIntervalNanos: UInt64 { 1_000_000_000 }
    /// Counter reads further apart than this around a read of the system clock
    /// mean the thread was descheduled in between: the pair is read again.
    package static var bracketNanos: UInt64 { 20_000 }
    /// At most this many pairs per comparison.
    package static var maxBracketReads: Int { 4 }
    /// A measured rate further than this from the nominal one (1 %) is not
    /// the counter's: the system clock was stepped meanwhile.
    package static var maxRateErrorPpm: UInt64 { 10_000 }

    package init(source: Source, ticksPerSecond: UInt64) {
        self.source = source
        let hz = max(ticksPerSecond, 1)
        nominalQ32 = Self.rate(nanos: 1_000_000_000, ticks: hz) ?? 1 << 32
        rateQ32 = nominalQ32
        syncTicks = max(hz / (1_000_000_000 / Self.syncIntervalNanos), 1)
        rateTicks = max(hz / (1_000_000_000 / Self.rateIntervalNanos), 1)
        bracketTicks = max(hz / (1_000_000_000 / Self.bracketNanos), 1)
        let ticks = self.source.ticks()
        let wall = self.source.wallNanos()
        anchorTicks = ticks
        anchorNanos = wall
        rateBaseTicks = ticks
        rateBaseNanos = wall
        last = wall
    }

    /// The time now, epoch nanoseconds.
    @inline(__always)
    package mutating func nowNanos() -> UInt64 {
        let ticks = source.ticks()
        let elapsed = ticks &- anchorTicks
        // A counter that went back (another core's TSC) is a huge `elapsed`: compared too.
        let shown = elapsed < syncTicks ? anchorNanos &+ Self.scale(elapsed, by: rateQ32) : compare(at: ticks)
        if shown > last {
            last = shown
        } else if shown < last {
            heldReads &+= 1
        }
        return last
    }

    /// `ticks * factorQ32 >> 32` without overflow.
    @inline(__always)
    static func scale(_ ticks: UInt64, by factorQ32: UInt64) -> UInt64 {
        let product = ticks.multipliedFullWidth(by: factorQ32)
        return (product.high << 32) | (product.low >> 32)
    }

    /// Reads the system clock, anchors there, and learns the counter's rate
    /// once a long enough interval has passed. Returns the system clock.
    @inline(never)
    private mutating func compare(at ticks: UInt64) -> UInt64 {
        // The counter read on both sides of the system clock: a thread descheduled
        // between the two reads would pair the counter with a time read long after
        // it and run ahead by the gap, so a wide bracket is read again.
        var before = ticks
        var wall = source.wallNanos()
        var after = source.ticks()
        var tries = 1
        while after &- before > bracketTicks && tries < Self.maxBracketReads {
            before = after
            wall = source.wallNanos()
            after = source.ticks()
            tries += 1
        }
        // Still wide: the earlier read, which can only put the clock ahead (keys late), never behind.
        let ticks = after &- before > bracketTicks ? before : before &+ (after &- before) / 2
        anchorTicks = ticks
        anchorNanos = wall
        let interval = ticks &- rateBaseTicks
        if interval >= rateTicks {
            if interval < 1 << 63, wall > rateBaseNanos {
                let measured = Self.rate(nanos: wall - rateBaseNanos, ticks: interval)
                let bound = nominalQ32 / 1_000_000 * Self.maxRateErrorPpm
                if let measured, measured >= nominalQ32 - bound, measured <= nominalQ32 + bound {
                    rateQ32 = measured
                }
            }
            rateBaseTicks = ticks
            rateBaseNanos = wall
        }
        return wall
    }

    /// Nanoseconds per tick (32.32) over an interval; nil if it does not fit.
    static func rate(nanos: UInt64, ticks: UInt64) -> UInt64? {
        guard ticks > 0, nanos >> 32 < ticks else { return nil }
        return ticks.dividingFullWidth((high: nanos >> 32, low: nanos << 32)).quotient
    }
}

extension CaptureClock where Source == TscTimeSource {
    /// The TSC, at DPDK's measured frequency, against CLOCK_REALTIME.
    package init() {
        self.init(source: TscTimeSource(), ticksPerSecond: rte_get_tsc_hz())
    }
}
