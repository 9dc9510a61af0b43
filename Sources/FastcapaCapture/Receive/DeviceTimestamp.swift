import CDPDK
import Glibc

/// What a port's receive timestamps count, and so how they become epoch nanoseconds.
package enum DeviceTimeBase: Sendable, Equatable {
    /// Epoch microseconds: net_pcap, the pcap record's time.
    case epochMicros
    /// Epoch nanoseconds: a device clock that runs on real time (mlx5 in real-time mode).
    case epochNanos
    /// Ticks of the device's own clock (ice, i40e, ixgbe, mlx5 free-running),
    /// converted against the system clock (`DeviceClock`).
    case deviceClock

    /// A device clock this close to CLOCK_REALTIME in ns counts in epoch ns.
    package static let realTimeTolerance: UInt64 = 2_000_000_000

    /// How port's timestamps count, from its driver, whether the receive
    /// timestamp offload is on, and a reading of its clock (nil: none); nil
    /// when there is no timestamp to trust (the TSC clock gives capture times).
    package static func of(driver: String, timestampOffload: Bool, clock: DeviceClockSample?) -> DeviceTimeBase? {
        // net_pcap stamps every packet with its record's time without offering the offload.
        if driver == "net_pcap" { return .epochMicros }
        guard timestampOffload, let clock else { return nil }
        let apart = clock.ticks > clock.wallNanos ? clock.ticks - clock.wallNanos : clock.wallNanos - clock.ticks
        return apart <= realTimeTolerance ? .epochNanos : .deviceClock
    }
}

/// Which clock gives one port's capture times, and their resolution: what
/// `check` and the capture's start line say.
package struct PortCaptureTime: Sendable, Equatable {
    package var port: UInt16
    package var driver: String
    /// nil: the system clock read per burst (TSC).
    package var base: DeviceTimeBase?
    /// The device clock's rate measured at start (`.deviceClock` only).
    package var ticksPerSecond: UInt64?

    package init(port: UInt16, driver: String, base: DeviceTimeBase?, ticksPerSecond: UInt64? = nil) {
        self.port = port
        self.driver = driver
        self.base = base
        self.ticksPerSecond = ticksPerSecond
    }

    /// E.g. "port 0 (net_pcap): device timestamps, epoch µs".
    package var description: String { "port \(port) (\(driver)): \(source)" }

    package var source: String {
        switch base {
        case nil: return "system clock read per burst (TSC), ns"
        case .epochMicros: return "device timestamps, epoch µs"
        case .epochNanos: return "device timestamps, epoch ns (the device clock runs on real time)"
        case .deviceClock:
            guard let hz = ticksPerSecond, hz > 0 else {
                return "device timestamps, the device's clock against the system clock (rate measured at start)"
            }
            let tick = 1e9 / Double(hz)
            let resolution = tick < 1.5 ? "ns" : "\(Int(tick.rounded())) ns"
            return
                "device timestamps, the device's clock (\(hz / 1_000_000) MHz) against the system clock, \(resolution)"
        }
    }
}

/// How one receive queue reads its port's timestamp field and makes it epoch
/// nanoseconds. Each receive worker owns one (a device clock's converter keeps state).
package struct DeviceTimestamp<Source: DeviceClockSource> {
    package let fieldOffset: Int32
    package let flag: UInt64
    package let base: DeviceTimeBase
    /// The converter of a `.deviceClock` port.
    package var clock: DeviceClock<Source>?

    package init(fieldOffset: Int32, flag: UInt64, base: DeviceTimeBase, clock: DeviceClock<Source>? = nil) {
        self.fieldOffset = fieldOffset
        self.flag = flag
        self.base = base
        self.clock = base == .deviceClock ? clock : nil
    }

    /// Epoch nanoseconds from the timestamp field's value.
    @inline(__always)
    package mutating func nanos(_ value: UInt64) -> UInt64 {
        switch base {
        case .epochMicros: return Self.pcapMicros(value) &* 1000
        case .epochNanos: return value
        case .deviceClock: return clock!.nanos(value)
        }
    }

    /// A device clock's calibration, when due by `now` (epoch ns): once per burst, a comparison.
    @inline(__always)
    package mutating func calibrate(ifDueAt now: UInt64) {
        if base == .deviceClock { clock!.calibrate(ifDueAt: now) }
    }

    /// Epoch microseconds from net_pcap's timestamp.
    ///
    /// pcap files store seconds as an unsigned 32-bit number (good until 2106),
    /// but libpcap hands them to net_pcap as a signed one, so records from 2038
    /// on arrive as negative times. Such a value is 2^32 seconds too small.
    @inline(__always)
    package static func pcapMicros(_ value: UInt64) -> UInt64 {
        Int64(bitPattern: value) < 0 ? value &+ pcapSecondsWrap : value
    }

    static var pcapSecondsWrap: UInt64 { (1 << 32) * 1_000_000 }
}

extension DeviceTimestamp where Source == EthDeviceClockSource {
    /// The timestamp field's offset and flag bit, once a driver has registered
    /// them (drivers do when they start); nil when absent.
    static func registeredField() -> (offset: Int32, flag: UInt64)? {
        let field = rte_mbuf_dynfield_lookup(CDPDK_RTE_MBUF_DYNFIELD_TIMESTAMP_NAME(), nil)
        let bit = rte_mbuf_dynflag_lookup(CDPDK_RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME(), nil)
        guard field >= 0, bit >= 0 else { return nil }
        return (field, 1 << UInt64(bit))
    }

    /// A started port's timestamps: what they count (`DeviceTimeBase.of`) and,
    /// for a device clock, its converter; nil when the port gives none the
    /// probe can convert.
    static func forPort(_ id: UInt16, driver: String, timestampOffload: Bool) -> DeviceTimestamp? {
        guard let field = registeredField(),
            let (base, clock) = inspect(id, driver: driver, timestampOffload: timestampOffload)
        else { return nil }
        return DeviceTimestamp(fieldOffset: field.offset, flag: field.flag, base: base, clock: clock)
    }

    /// What port `id`'s timestamps count and, for a device clock, its converter
    /// with the rate measured over `settleMicros`; nil: none to convert.
    package static func inspect(
        _ id: UInt16,
        driver: String,
        timestampOffload: Bool,
        settleMicros: UInt32 = 20_000
    ) -> (base: DeviceTimeBase, clock: DeviceClock<EthDeviceClockSource>?)? {
        let source = EthDeviceClockSource(port: id)
        let first = source.sample()
        guard let base = DeviceTimeBase.of(driver: driver, timestampOffload: timestampOffload, clock: first) else {
            return nil
        }
        guard base == .deviceClock, let first else { return (base, nil) }
        usleep(settleMicros)
        guard let second = source.sample(), let clock = DeviceClock(source: source, first: first, second: second)
        else { return nil }
        return (base, clock)
    }

    /// What `check` and the start line say of this port's capture times (`nil` timestamps: the TSC clock).
    static func describe(_ timestamp: DeviceTimestamp?, port: UInt16, driver: String) -> PortCaptureTime {
        PortCaptureTime(
            port: port,
            driver: driver,
            base: timestamp?.base,
            ticksPerSecond: timestamp?.clock?.ticksPerSecond
        )
    }
}
