import CDPDK
import Glibc

/// Wall-clock time in epoch microseconds, read from the TSC.
///
/// A receive worker reads it once per burst for devices that do not stamp
/// packets themselves. Each worker owns its clock (no sharing, no locks) and
/// re-anchors it to the system clock once a second, so TSC drift never
/// accumulates beyond a second's worth.
public struct CaptureClock {
    private var anchorTsc: UInt64 = 0
    private var anchorMicros: UInt64 = 0
    private let ticksPerSecond: UInt64
    /// Microseconds per tick as a 32.32 fixed-point number.
    private let microsPerTickQ32: UInt64

    public init(ticksPerSecond: UInt64 = rte_get_tsc_hz()) {
        self.ticksPerSecond = max(ticksPerSecond, 1)
        self.microsPerTickQ32 = (1_000_000 << 32) / self.ticksPerSecond
        anchor(at: cfc_tsc())
    }

    @inline(__always)
    public mutating func nowMicros() -> UInt64 {
        let tsc = cfc_tsc()
        var elapsed = tsc &- anchorTsc
        if elapsed >= ticksPerSecond {
            anchor(at: tsc)
            elapsed = 0
        }
        return anchorMicros &+ Self.scale(elapsed, by: microsPerTickQ32)
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
    }
}

/// How a device's receive timestamp becomes epoch microseconds.
public struct DeviceTimestamp: Sendable {
    public var fieldOffset: Int32
    public var flag: UInt64
    /// Device units per microsecond.
    public var unitsPerMicro: UInt64

    /// Epoch microseconds from a device timestamp.
    ///
    /// pcap files store seconds as an unsigned 32-bit number (good until 2106),
    /// but libpcap hands them to net_pcap as a signed one, so records from 2038
    /// on arrive as negative times. Such a value is 2^32 seconds too small.
    @inline(__always)
    public func micros(_ value: UInt64) -> UInt64 {
        let micros = value / unitsPerMicro
        return Int64(bitPattern: micros) < 0 ? micros &+ Self.pcapSecondsWrap : micros
    }

    static let pcapSecondsWrap: UInt64 = (1 << 32) * 1_000_000
}
