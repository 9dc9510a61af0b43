import CDPDK
import FastcapaTestSupport
import Glibc
import Testing

@testable import FastcapaCapture

/// A TSC and a system clock whose relation the test sets: the counter ticks at
/// `trueHz` while the clock is told another rate; NTP may step the system clock.
final class SimulatedClocks {
    /// True time since the start, ns.
    var elapsed: UInt64 = 0
    /// The system clock minus true time, ns (an NTP step changes it).
    var wallOffset: Int64 = 0
    let trueHz: Double
    /// True time that passes inside the next read of the system clock (the reading thread descheduled).
    var stallInNextWallRead: UInt64 = 0
    static let start: UInt64 = 1_700_000_000 * 1_000_000_000

    init(trueHz: Double) { self.trueHz = trueHz }

    var wall: UInt64 { UInt64(Int64(Self.start + elapsed) + wallOffset) }
    var ticks: UInt64 { 1_000_000 + UInt64(Double(elapsed) * trueHz / 1e9) }
}

struct SimulatedTime: CaptureTimeSource {
    let clocks: SimulatedClocks
    func ticks() -> UInt64 { clocks.ticks }
    func wallNanos() -> UInt64 {
        clocks.elapsed += clocks.stallInNextWallRead
        clocks.stallInNextWallRead = 0
        return clocks.wall
    }
}

/// Reads a capture clock on simulated time and keeps what matters: whether it
/// ever went back, and how far it was from the system clock.
struct ClockDrive {
    static let nominalHz: UInt64 = 2_000_000_000
    /// One comparison interval at the largest rate error the clock accepts, plus rounding.
    static let boundNanos: Int64 =
        Int64(
            CaptureClock<SimulatedTime>.syncIntervalNanos * CaptureClock<SimulatedTime>.maxRateErrorPpm / 1_000_000
        ) + 1000

    let clocks: SimulatedClocks
    var clock: CaptureClock<SimulatedTime>
    var last: UInt64 = 0
    var backwards = 0
    /// The largest |clock - system clock| since the last `resetError()`, ns.
    var worstError: Int64 = 0

    /// A counter whose real rate is off from the one the clock is told by `ppm`.
    init(rateErrorPpm ppm: Double) {
        clocks = SimulatedClocks(trueHz: Double(Self.nominalHz) * (1 + ppm / 1e6))
        clock = CaptureClock(source: SimulatedTime(clocks: clocks), ticksPerSecond: Self.nominalHz)
    }

    /// Reads the clock once, now.
    @discardableResult
    mutating func read() -> Int64 {
        let now = clock.nowNanos()
        if now < last { backwards += 1 }
        last = now
        let error = Int64(bitPattern: now &- clocks.wall)
        worstError = max(worstError, abs(error))
        return error
    }

    /// Reads the clock for `nanos` of true time, at gaps drawn from `gaps` (ns).
    mutating func run(for nanos: UInt64, gaps: ClosedRange<UInt64>, _ random: inout SeededGenerator) {
        let end = clocks.elapsed + nanos
        while clocks.elapsed < end {
            read()
            clocks.elapsed += UInt64.random(in: gaps, using: &random)
        }
    }

    mutating func resetError() { worstError = 0 }
}

@Suite struct CaptureClockTests {
    /// Busy polling (a read every few µs) and light traffic (gaps up to the idle
    /// backoff's longest sleep, and past a comparison interval).
    static let gaps: [ClosedRange<UInt64>] = [1_000...40_000, 1_000...2_000_000]

    @Test(arguments: [-5_000.0, 0, 5_000.0], [0, 1])
    func withinOneIntervalOfRateErrorOfTheSystemClock(ppm: Double, gaps: Int) {
        var random = SeededGenerator(seed: 28)
        var drive = ClockDrive(rateErrorPpm: ppm)
        drive.run(for: 1_500_000_000, gaps: Self.gaps[gaps], &random)
        #expect(drive.backwards == 0)
        // From the first read: at most the rate error over one comparison interval.
        #expect(drive.worstError <= ClockDrive.boundNanos, "\(drive.worstError) ns off at \(ppm) ppm")
        // Once it has learned the counter's rate: within a few ns, and it no longer holds.
        drive.resetError()
        let held = drive.clock.heldReads
        drive.run(for: 2_000_000_000, gaps: Self.gaps[gaps], &random)
        #expect(drive.worstError <= 1_000, "\(drive.worstError) ns off at \(ppm) ppm once learned")
        #expect(drive.clock.heldReads - held <= 2, "held \(drive.clock.heldReads - held) reads once learned")
        #expect(drive.backwards == 0)
    }

    /// After an idle spell the first read is the system clock's time, whatever the
    /// counter's rate error: no extrapolation over the spell.
    @Test(arguments: [-5_000.0, 5_000.0], [10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000, 60_000_000_000])
    func theFirstReadAfterAnIdleSpellIsOnTime(ppm: Double, idle: UInt64) {
        var random = SeededGenerator(seed: idle)
        var drive = ClockDrive(rateErrorPpm: ppm)
        drive.run(for: 300_000_000, gaps: 1_000...40_000, &random)
        drive.clocks.elapsed += idle
        let error = drive.read()
        #expect(abs(error) <= 1_000, "\(error) ns off after \(idle / 1_000_000) ms idle at \(ppm) ppm")
        drive.resetError()
        drive.run(for: 50_000_000, gaps: 1_000...40_000, &random)
        #expect(drive.worstError <= ClockDrive.boundNanos)
        #expect(drive.backwards == 0)
    }

    /// NTP steps the system clock forward: the clock follows within one
    /// comparison interval (a step up never goes back).
    @Test(arguments: [200_000_000, 5_000_000_000] as [Int64])
    func anNtpStepForwardIsFollowedWithinAnInterval(step: Int64) {
        var random = SeededGenerator(seed: 7)
        var drive = ClockDrive(rateErrorPpm: 300)
        drive.run(for: 1_200_000_000, gaps: 1_000...40_000, &random)
        drive.clocks.wallOffset += step
        drive.run(for: CaptureClock<SimulatedTime>.syncIntervalNanos, gaps: 1_000...40_000, &random)
        drive.resetError()
        drive.run(for: 2_000_000_000, gaps: 1_000...40_000, &random)
        #expect(drive.worstError <= ClockDrive.boundNanos, "\(drive.worstError) ns off after a step of \(step) ns")
        #expect(drive.backwards == 0)
    }

    /// NTP steps the system clock back: the clock holds its last time (counted)
    /// until the system clock passes it, then follows it again.
    @Test(arguments: [5_000_000, 200_000_000] as [Int64])
    func anNtpStepBackIsHeldUntilTheSystemClockPasses(step: Int64) {
        var random = SeededGenerator(seed: 11)
        var drive = ClockDrive(rateErrorPpm: -300)
        drive.run(for: 1_200_000_000, gaps: 1_000...40_000, &random)
        let heldBefore = drive.clock.heldReads
        let shown = drive.last
        drive.clocks.wallOffset -= step
        // While the system clock is behind: the clock shows no earlier time, and no later one.
        drive.run(for: UInt64(step) - 2 * CaptureClock<SimulatedTime>.syncIntervalNanos, gaps: 1_000...40_000, &random)
        #expect(drive.backwards == 0)
        #expect(drive.last >= shown && drive.last <= shown + 2 * CaptureClock<SimulatedTime>.syncIntervalNanos)
        #expect(drive.clock.heldReads - heldBefore > 20, "the reads it held are counted")
        // Once it has passed: on the system clock again.
        drive.run(for: 3 * CaptureClock<SimulatedTime>.syncIntervalNanos, gaps: 1_000...40_000, &random)
        drive.resetError()
        drive.run(for: 2_000_000_000, gaps: 1_000...40_000, &random)
        #expect(drive.worstError <= ClockDrive.boundNanos, "\(drive.worstError) ns off after a step back of \(step) ns")
        #expect(drive.backwards == 0)
    }

    /// The reading thread descheduled between the counter's read and the system clock's, at a comparison: the
    /// pair is read again, so the clock does not run ahead by the time it was away.
    @Test(arguments: [50_000, 5_000_000] as [UInt64])
    func aComparisonInterruptedByTheSchedulerIsReadAgain(stall: UInt64) {
        var random = SeededGenerator(seed: stall)
        var drive = ClockDrive(rateErrorPpm: 0)
        drive.run(for: 1_500_000_000, gaps: 1_000...40_000, &random)
        drive.clocks.elapsed += CaptureClock<SimulatedTime>.syncIntervalNanos
        drive.clocks.stallInNextWallRead = stall
        drive.read()
        drive.resetError()
        drive.run(for: CaptureClock<SimulatedTime>.syncIntervalNanos / 2, gaps: 1_000...40_000, &random)
        #expect(drive.worstError <= 1_000, "\(drive.worstError) ns off after a stall of \(stall) ns")
        #expect(drive.backwards == 0)
    }

    /// A counter that goes back (another core's TSC, unsynchronised) never takes the time back.
    @Test func aCounterThatGoesBackNeverTakesTheTimeBack() {
        final class Backwards: CaptureTimeSource {
            var ticks0: UInt64 = 10_000_000_000
            var wall: UInt64 = SimulatedClocks.start
            func ticks() -> UInt64 { ticks0 }
            func wallNanos() -> UInt64 { wall }
        }
        let source = Backwards()
        var clock = CaptureClock(source: source, ticksPerSecond: 1_000_000_000)
        source.ticks0 += 500_000
        source.wall += 500_000
        let before = clock.nowNanos()
        source.ticks0 -= 5_000_000
        source.wall += 1_000
        let after = clock.nowNanos()
        #expect(after >= before)
        #expect(after == SimulatedClocks.start + 501_000, "compared with the system clock at once")
    }

    @Test func scalingNeverOverflows() {
        // 3 GHz: a day of ticks is 2.6e14; times 1e9 would overflow 64 bits.
        let factor = CaptureClock<SimulatedTime>.rate(nanos: 1_000_000_000, ticks: 3_000_000_000)!
        let day = UInt64(86_400) * 3_000_000_000
        let nanos = CaptureClock<SimulatedTime>.scale(day, by: factor)
        #expect(nanos > 86_399_999_000_000 && nanos <= 86_400_000_000_000)
        #expect(CaptureClock<SimulatedTime>.scale(3_000_000_000, by: factor) / 1000 == 999_999)
        // A minute of nanoseconds over its ticks (more than 2^32 ns): the rate is exact.
        #expect(CaptureClock<SimulatedTime>.rate(nanos: 60_000_000_000, ticks: 180_000_000_000) == factor)
    }
}

@Suite struct CaptureClockOnTheTSCTests {
    /// The real TSC, told a frequency 0.5 % off: the clock compares itself with
    /// the system clock often enough to stay within microseconds, and never steps back.
    @Test func aClockToldTheWrongRateStaysOnTheSystemClock() {
        let hz = Self.measuredTscHz()
        var clock = CaptureClock(source: TscTimeSource(), ticksPerSecond: hz * 1000 / 1005)
        var last: UInt64 = 0
        var stepsBack = 0
        var closest = Int64.max
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let end = now.tv_sec + 2
        repeat {
            let value = clock.nowNanos()
            if value < last { stepsBack += 1 }
            last = value
            // The system clock read right after: the clock is never ahead of it by
            // more than an interval's rate error (a preempted read only adds lag).
            let wall = TscTimeSource().wallNanos()
            closest = min(closest, Int64(bitPattern: wall &- value))
            clock_gettime(CLOCK_MONOTONIC, &now)
        } while now.tv_sec < end
        #expect(stepsBack == 0)
        #expect(closest >= -ClockDrive.boundNanos, "ahead of the system clock by \(-closest) ns")
    }

    /// The TSC's frequency against CLOCK_MONOTONIC_RAW over 200 ms (EAL is not initialised here), each end
    /// a clock read bracketed by two TSC reads close together, so that a descheduled thread does not skew it.
    static func measuredTscHz() -> UInt64 {
        func pair() -> (ticks: UInt64, nanos: UInt64) {
            var best: (ticks: UInt64, nanos: UInt64, width: UInt64) = (0, 0, .max)
            for _ in 0..<100 {
                var now = timespec()
                let before = CDPDK_rte_rdtsc()
                clock_gettime(CLOCK_MONOTONIC_RAW, &now)
                let after = CDPDK_rte_rdtsc()
                if after &- before < best.width {
                    best = (
                        before + (after - before) / 2, UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec),
                        after - before
                    )
                }
            }
            return (best.ticks, best.nanos)
        }
        let start = pair()
        usleep(200_000)
        let end = pair()
        return (end.ticks - start.ticks) * 1_000_000_000 / (end.nanos - start.nanos)
    }
}
