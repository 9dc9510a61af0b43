import Testing

@testable import FastcapaCapture

/// A device clock and the system clock, both driven by the test: the device
/// ticks at `hz` (which the test may change) in a counter of `bits` bits; the
/// system clock is true time plus `wallOffset` (an NTP step).
final class SimulatedDevice {
    static let start: UInt64 = 1_700_000_000_000_000_000
    var trueNanos = start
    var ticks: Double
    var hz: Double
    var wallOffset: Int64 = 0
    let mask: UInt64

    init(hz: Double, firstTicks: Double = 5_000_000_000_000, bits: Int = 64) {
        self.hz = hz
        ticks = firstTicks
        mask = bits == 64 ? .max : (1 << UInt64(bits)) - 1
    }

    func advance(nanos: UInt64) {
        trueNanos += nanos
        ticks += Double(nanos) * hz / 1e9
    }

    /// What the device writes in a packet it receives now.
    var reading: UInt64 { UInt64(ticks) & mask }
    var wall: UInt64 { UInt64(Int64(trueNanos) + wallOffset) }
    var sample: DeviceClockSample { DeviceClockSample(ticks: reading, wallNanos: wall) }
}

struct SimulatedDeviceSource: DeviceClockSource {
    let device: SimulatedDevice
    func sample() -> DeviceClockSample? { device.sample }
}

@Suite struct DeviceTimestampTests {
    /// A converter calibrated at start over 20 ms, as the capture does.
    static func converter(_ device: SimulatedDevice, bits: Int = 64) -> DeviceClock<SimulatedDeviceSource> {
        let first = device.sample
        device.advance(nanos: 20_000_000)
        return DeviceClock(
            source: SimulatedDeviceSource(device: device),
            first: first,
            second: device.sample,
            counterBits: bits
        )!
    }

    /// Receives a packet every `step` ns for `duration` ns (calibrating per
    /// "burst", as the receive worker does); returns the largest step back,
    /// and the largest distance from true time after `settle` ns.
    static func run(
        _ device: SimulatedDevice,
        _ clock: inout DeviceClock<SimulatedDeviceSource>,
        duration: UInt64,
        step: UInt64 = 1_370_000,
        settle: UInt64 = 0,
        event: (UInt64) -> Void = { _ in }
    ) -> (backwards: UInt64, worstError: UInt64) {
        let start = device.trueNanos
        var last: UInt64 = 0
        var backwards: UInt64 = 0
        var worst: UInt64 = 0
        while device.trueNanos - start < duration {
            event(device.trueNanos - start)
            let received = device.reading
            device.advance(nanos: 3_000)  // the burst returns a little later
            clock.calibrate(ifDueAt: device.wall)
            let now = clock.nanos(received)
            if now < last { backwards = max(backwards, last - now) }
            last = now
            let truth = device.trueNanos - 3_000
            if device.trueNanos - start > settle {
                worst = max(worst, now > truth ? now - truth : truth - now)
            }
            device.advance(nanos: step)
        }
        return (backwards, worst)
    }

    @Test func whatAPortsTimestampsCountFollowsItsDriverAndClock() {
        let wall: UInt64 = 1_765_000_000_000_000_000
        let near = DeviceClockSample(ticks: wall + 300_000_000, wallNanos: wall)
        let free = DeviceClockSample(ticks: 81_234_567_890, wallNanos: wall)
        #expect(DeviceTimeBase.of(driver: "net_pcap", timestampOffload: false, clock: nil) == .epochMicros)
        #expect(DeviceTimeBase.of(driver: "mlx5_pci", timestampOffload: true, clock: near) == .epochNanos)
        #expect(DeviceTimeBase.of(driver: "mlx5_pci", timestampOffload: true, clock: free) == .deviceClock)
        #expect(DeviceTimeBase.of(driver: "net_ice", timestampOffload: false, clock: free) == nil)
        #expect(DeviceTimeBase.of(driver: "net_ice", timestampOffload: true, clock: nil) == nil)
        #expect(DeviceTimeBase.of(driver: "net_af_packet", timestampOffload: false, clock: nil) == nil)
    }

    @Test func epochNanosecondsPassThrough() {
        var device = DeviceTimestamp<SimulatedDeviceSource>(fieldOffset: 0, flag: 0, base: .epochNanos)
        #expect(device.nanos(1_765_000_000_123_456_789) == 1_765_000_000_123_456_789)
    }

    @Test func whatCheckAndTheStartLineSay() {
        #expect(
            PortCaptureTime(port: 0, driver: "net_pcap", base: .epochMicros).description
                == "port 0 (net_pcap): device timestamps, epoch µs"
        )
        #expect(
            PortCaptureTime(port: 1, driver: "net_af_packet", base: nil).description
                == "port 1 (net_af_packet): system clock read per burst (TSC), ns"
        )
        #expect(
            PortCaptureTime(port: 2, driver: "net_ixgbe", base: .deviceClock, ticksPerSecond: 156_250_000).source
                == "device timestamps, the device's clock (156 MHz) against the system clock, 6 ns"
        )
    }

    /// Any offset between the device's counter and the epoch, a rate the start measured.
    @Test(arguments: [1_000_000_000.0, 156_250_000.0, 25_000_000.0])
    func aDeviceClockBecomesEpochNanoseconds(hz: Double) {
        let device = SimulatedDevice(hz: hz)
        var clock = Self.converter(device)
        #expect(abs(Double(clock.ticksPerSecond) - hz) < hz * 1e-6)
        let result = Self.run(device, &clock, duration: 30_000_000_000)
        #expect(result.backwards == 0)
        // One tick of the slowest clock (40 ns) plus the rounding of the samples.
        #expect(result.worstError <= 100, "\(result.worstError) ns off")
        #expect(clock.heldReads == 0)
    }

    /// The device's rate drifts by ±0.5 % after the start measured it (or the
    /// start measured it badly): each calibration learns it again.
    @Test(arguments: [1.005, 0.995])
    func aRateErrorIsLearnedAtEachCalibration(factor: Double) {
        let device = SimulatedDevice(hz: 1_000_000_000)
        var clock = Self.converter(device)
        device.hz *= factor
        // 0.5 % of the second before the first calibration: 5 ms off at worst, then the error of a learned rate.
        let first = Self.run(device, &clock, duration: 2_500_000_000)
        #expect(first.backwards == 0)
        #expect(first.worstError <= 5_100_000)
        let settled = Self.run(device, &clock, duration: 20_000_000_000)
        #expect(settled.backwards == 0)
        #expect(settled.worstError <= 1_000, "\(settled.worstError) ns off once learned")
    }

    /// Idle spells of 10 ms to 60 s: the first burst after one calibrates before it converts.
    @Test(arguments: [10_000_000 as UInt64, 1_500_000_000, 60_000_000_000])
    func anIdleSpellLeavesNoError(idle: UInt64) {
        let device = SimulatedDevice(hz: 1_000_000_000)
        var clock = Self.converter(device)
        _ = Self.run(device, &clock, duration: 3_000_000_000)
        device.hz *= 1.000_2  // 200 ppm of drift meanwhile
        device.advance(nanos: idle)
        let after = Self.run(device, &clock, duration: 3_000_000_000)
        #expect(after.backwards == 0)
        #expect(after.worstError <= 200_000 + 1_000, "\(after.worstError) ns off after \(idle) ns idle")
    }

    /// A 32-bit counter at 1 GHz wraps every 4.3 s; it is calibrated every second.
    @Test func aThirtyTwoBitCounterWraps() {
        let device = SimulatedDevice(hz: 1_000_000_000, firstTicks: 4_000_000_000, bits: 32)
        var clock = Self.converter(device, bits: 32)
        let result = Self.run(device, &clock, duration: 20_000_000_000)
        #expect(result.backwards == 0)
        #expect(result.worstError <= 100, "\(result.worstError) ns off")
        // After an idle spell longer than a wrap, the first burst calibrates before converting.
        device.advance(nanos: 9_000_000_000)
        let after = Self.run(device, &clock, duration: 2_000_000_000)
        #expect(after.worstError <= 100, "\(after.worstError) ns off after 9 s idle")
    }

    /// A packet received before a calibration but converted after it (negative ticks from the anchor).
    @Test func aPacketFromBeforeTheAnchorConverts() {
        let device = SimulatedDevice(hz: 1_000_000_000)
        var clock = Self.converter(device)
        let early = device.reading
        let truth = device.trueNanos
        device.advance(nanos: 1_000_000_000)
        clock.calibrate()
        let converted = clock.nanos(early)
        #expect(converted <= truth + 10 && converted + 10 >= truth)
    }

    @Test func anNtpStepForwardIsFollowedAtTheNextCalibration() {
        let device = SimulatedDevice(hz: 1_000_000_000)
        var clock = Self.converter(device)
        let result = Self.run(device, &clock, duration: 10_000_000_000, settle: 5_000_000_000) { elapsed in
            if elapsed > 3_000_000_000 && device.wallOffset == 0 { device.wallOffset = 2_000_000_000 }
        }
        #expect(result.backwards == 0)
        // Measured against true time: the system clock is 2 s ahead of it and the keys follow it.
        #expect(result.worstError >= 1_999_999_000 && result.worstError <= 2_000_001_000)
    }

    /// A small step back (≤ 1 ms) holds values until the clock reaches them; a
    /// large one is slewed towards at 1 %, never stepping back.
    @Test(arguments: [-500_000 as Int64, -300_000_000])
    func anNtpStepBackNeverStepsBack(offset: Int64) {
        let device = SimulatedDevice(hz: 1_000_000_000)
        var clock = Self.converter(device)
        let source = SimulatedDeviceSource(device: device)
        let result = Self.run(device, &clock, duration: 40_000_000_000, step: 100_000) { elapsed in
            if elapsed > 3_000_000_000 && device.wallOffset == 0 { device.wallOffset = offset }
        }
        #expect(result.backwards == 0)
        // Where it ends, against the stepped system clock.
        let now = clock.nanos(source.sample()!.ticks)
        let gap = now > device.wall ? now - device.wall : device.wall - now
        if offset > -1_000_000 {
            #expect(clock.heldReads > 0)
            #expect(gap <= 1_000, "\(gap) ns off the stepped clock")
        } else {
            // 300 ms at up to 10 ms a second: closed within about 31 s of the 37 s left.
            #expect(gap <= 1_000_000, "\(gap) ns off the stepped clock")
        }
    }
}
