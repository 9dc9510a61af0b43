import CDPDK
import Glibc

/// One reading of a device's clock (the unit its packet timestamps count in)
/// paired with the system's wall clock at the same moment (epoch ns).
package struct DeviceClockSample: Sendable, Equatable {
    package var ticks: UInt64
    package var wallNanos: UInt64

    package init(ticks: UInt64, wallNanos: UInt64) {
        self.ticks = ticks
        self.wallNanos = wallNanos
    }
}

/// Where a device clock's converter reads time.
package protocol DeviceClockSource {
    /// The device's clock and the system's wall clock read together; nil when the device cannot be read.
    mutating func sample() -> DeviceClockSample?
}

/// A port's clock (`rte_eth_read_clock`) against CLOCK_REALTIME: the device is
/// read between two wall-clock reads and paired with their midpoint.
package struct EthDeviceClockSource: DeviceClockSource {
    package let port: UInt16

    package init(port: UInt16) { self.port = port }

    package func sample() -> DeviceClockSample? {
        let before = Self.wallNanos()
        var ticks: UInt64 = 0
        guard CDPDK_rte_eth_read_clock(port, &ticks) == 0 else { return nil }
        let after = Self.wallNanos()
        return DeviceClockSample(ticks: ticks, wallNanos: before + (after &- before) / 2)
    }

    /// CLOCK_REALTIME in epoch nanoseconds.
    package static func wallNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

/// Epoch nanoseconds from the ticks of a device's own clock (ice, i40e, ixgbe,
/// mlx5 free-running: the timestamps those drivers write count in it).
///
/// A tick count becomes nanoseconds linearly from an anchor: a reading of the
/// device paired with the system clock. The first rate comes from two readings
/// at start; then, once a second (`calibrate(ifDueAt:)`, once per burst, a
/// comparison only), the converter reads the pair again, learns the rate over
/// the interval since the last reading (a measure more than `maxRateErrorPpm`
/// off the first is a step of the system clock, and not learned) and
/// re-anchors on the system clock: the error between readings is the rate's
/// error over a second, not an accumulated drift. A system clock more than
/// `maxHoldNanos` behind the last value returned (an NTP step back) is not
/// followed at once but slewed towards (at most `maxSlewPpm`), and a value is
/// never below the last one returned (`heldReads` counts the times it had to hold one). A
/// counter narrower than 64 bits wraps: differences are taken modulo its width,
/// so calibrations must come at least every half wrap (they do while packets
/// arrive; after an idle spell the first burst calibrates before converting).
package struct DeviceClock<Source: DeviceClockSource> {
    private var source: Source
    private let mask: UInt64
    private let signBit: UInt64
    /// Nanoseconds per tick (32.32 fixed point): as first measured, and as used now.
    private let nominalQ32: UInt64
    private var rateQ32: UInt64
    private var anchorTicks: UInt64
    private var anchorNanos: UInt64
    /// The last reading, to learn the rate from.
    private var sync: DeviceClockSample
    private var nextCalibration: UInt64
    private var last: UInt64 = 0
    /// How many conversions returned the last value again because they fell below it.
    package private(set) var heldReads: UInt64 = 0

    /// A calibration a second.
    package static var calibrationNanos: UInt64 { 1_000_000_000 }
    /// The learned rate stays within this fraction of the first one (1 %).
    package static var maxRateErrorPpm: UInt64 { 10_000 }
    /// A system clock at most this far behind is re-anchored on at once (values hold meanwhile).
    package static var maxHoldNanos: UInt64 { 1_000_000 }
    /// Further behind, the converter runs slower by at most this fraction (1 %) until it meets it.
    package static var maxSlewPpm: UInt64 { 10_000 }

    /// - Parameters:
    ///   - first, second: two readings at start, far enough apart to measure the rate (e.g. 20 ms).
    ///   - counterBits: the width of the device's counter (64 for a 64-bit one).
    package init?(source: Source, first: DeviceClockSample, second: DeviceClockSample, counterBits: Int = 64) {
        guard (8...64).contains(counterBits) else { return nil }
        self.source = source
        mask = counterBits == 64 ? .max : (1 << UInt64(counterBits)) - 1
        signBit = 1 << UInt64(counterBits - 1)
        let ticks = (second.ticks &- first.ticks) & mask
        guard ticks > 0, ticks < signBit, second.wallNanos > first.wallNanos,
            let rate = CaptureClock<TscTimeSource>.rate(nanos: second.wallNanos - first.wallNanos, ticks: ticks)
        else { return nil }
        nominalQ32 = rate
        rateQ32 = rate
        anchorTicks = second.ticks
        anchorNanos = second.wallNanos
        sync = second
        nextCalibration = second.wallNanos + Self.calibrationNanos
    }

    /// The device's ticks per second, as measured at start.
    package var ticksPerSecond: UInt64 {
        UInt64((Double(1 << 32) * 1e9 / Double(nominalQ32)).rounded())
    }

    /// Epoch nanoseconds of a device timestamp; never below the last one returned.
    @inline(__always)
    package mutating func nanos(_ ticks: UInt64) -> UInt64 {
        let now = nanosUnheld(ticks)
        if now < last {
            heldReads &+= 1
            return last
        }
        last = now
        return now
    }

    /// Calibrates when a second has passed since the last calibration by `now` (epoch ns, any clock close to the system's).
    @inline(__always)
    package mutating func calibrate(ifDueAt now: UInt64) {
        if now >= nextCalibration { calibrate() }
    }

    /// Reads the device and the system clock, learns the rate since the last
    /// reading and re-anchors: on the system clock unless it is more than
    /// `maxHoldNanos` behind the last value returned, else on that value, slewing towards it.
    package mutating func calibrate() {
        guard let reading = source.sample() else {
            nextCalibration = nextCalibration &+ Self.calibrationNanos
            return
        }
        // The rate over the interval, when the counter cannot have wrapped in it; a
        // measure outside the bound is a step of the system clock, not a rate: not learned.
        let sinceSync = (reading.ticks &- sync.ticks) & mask
        let halfWrapNanos = CaptureClock<TscTimeSource>.scale(signBit, by: nominalQ32)
        var learned = rateQ32
        if sinceSync > 0, reading.wallNanos > sync.wallNanos, reading.wallNanos - sync.wallNanos < halfWrapNanos,
            let measured = CaptureClock<TscTimeSource>.rate(nanos: reading.wallNanos - sync.wallNanos, ticks: sinceSync)
        {
            let bound = nominalQ32 / 1_000_000 * Self.maxRateErrorPpm
            if measured >= nominalQ32 - bound && measured <= nominalQ32 + bound { learned = measured }
        }
        sync = reading
        nextCalibration = reading.wallNanos &+ Self.calibrationNanos
        anchorTicks = reading.ticks
        rateQ32 = learned
        if reading.wallNanos &+ Self.maxHoldNanos >= last {
            anchorNanos = reading.wallNanos
            return
        }
        // Far behind the last value returned (the system clock stepped back): go
        // on from that value, slower, closing at most maxSlewPpm of a second a second.
        anchorNanos = last
        let closed = min(last - reading.wallNanos, Self.calibrationNanos / 1_000_000 * Self.maxSlewPpm)
        rateQ32 = learned - UInt64(Double(learned) * Double(closed) / Double(Self.calibrationNanos))
    }

    /// What `nanos` would return for `ticks`, without holding or remembering it.
    @inline(__always)
    private func nanosUnheld(_ ticks: UInt64) -> UInt64 {
        let delta = (ticks &- anchorTicks) & mask
        if delta & signBit == 0 { return anchorNanos &+ CaptureClock<TscTimeSource>.scale(delta, by: rateQ32) }
        // Before the anchor: a packet received before the last calibration.
        return anchorNanos &- CaptureClock<TscTimeSource>.scale((0 &- delta) & mask, by: rateQ32)
    }
}
