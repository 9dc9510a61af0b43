import CDPDK
import Foundation
import Glibc
import Testing

@testable import FastcapaCapture

@Suite struct CaptureTimeTests {
    @Test func pcapTimesPast2038AreRecovered() {
        var device = DeviceTimestamp<SimulatedDeviceSource>(fieldOffset: 0, flag: 0, base: .epochMicros)
        // libpcap hands net_pcap 2^31 s as -2^31 s.
        let negative = UInt64(bitPattern: Int64(-2_147_483_648) * 1_000_000)
        #expect(device.nanos(negative) == 2_147_483_648 * 1_000_000_000)
        #expect(device.nanos(1_213_789_568_367_761) == 1_213_789_568_367_761_000)
    }

    @Test func clockScalingNeverOverflows() {
        // 3 GHz: a day of ticks is 2.6e14, times 1e6 would overflow 64 bits.
        let factor = (UInt64(1_000_000) << 32) / 3_000_000_000
        let day = UInt64(86_400) * 3_000_000_000
        let micros = CaptureClock<SimulatedTime>.scale(day, by: factor)
        #expect(micros > 86_399_000_000 && micros <= 86_400_000_000)
        #expect(CaptureClock<SimulatedTime>.scale(3_000_000_000, by: factor) / 1000 == 999)
    }
}

/// A TSC and a system clock whose relation the test sets: the TSC ticks at
/// `trueHz` while the clock is told `nominalHz`; the system clock may be stepped.
final class SimulatedClocks {
    var seconds: Double = 1_700_000_000
    var wallOffsetMicros: Double = 0
    let trueHz: Double
    init(trueHz: Double) { self.trueHz = trueHz }
}

struct SimulatedTime: CaptureTimeSource {
    let clocks: SimulatedClocks
    func ticks() -> UInt64 { UInt64((clocks.seconds - 1_700_000_000) * clocks.trueHz) + 1_000_000 }
    func wallMicros() -> UInt64 { UInt64(clocks.seconds * 1e6 + clocks.wallOffsetMicros) }
}

/// The capture clock slews towards CLOCK_REALTIME, never steps: with a TSC rate off by 0.1 % (or an NTP step
/// back) a clock that stepped to it once a second would make keys go backwards. Keys never decrease, and the
/// clock stays close to the wall clock.
@Suite struct CaptureClockTests {
    /// Reads the clock every `step` seconds for `duration`; returns the largest
    /// step back and the largest distance from the wall clock after `settle` s.
    static func run(
        _ clocks: SimulatedClocks,
        nominalHz: UInt64,
        duration: Double,
        step: Double = 0.0137,
        settle: Double = 5,
        event: (Double) -> Void = { _ in }
    ) -> (backwards: UInt64, worstErrorMicros: Double) {
        var clock = CaptureClock(source: SimulatedTime(clocks: clocks), ticksPerSecond: nominalHz)
        var last: UInt64 = 0
        var backwards: UInt64 = 0
        var worst = 0.0
        let start = clocks.seconds
        var elapsed = 0.0
        while elapsed < duration {
            event(elapsed)
            let now = clock.nowMicros()
            if now < last { backwards = max(backwards, last - now) }
            last = now
            if elapsed > settle {
                worst = max(worst, abs(Double(now) - (clocks.seconds * 1e6 + clocks.wallOffsetMicros)))
            }
            clocks.seconds += step
            elapsed = clocks.seconds - start
        }
        return (backwards, worst)
    }

    @Test(arguments: [1.001, 0.999])
    func aTscRateOffByAThousandthNeverStepsBack(factor: Double) {
        let clocks = SimulatedClocks(trueHz: 2_000_000_000 * factor)
        let result = Self.run(clocks, nominalHz: 2_000_000_000, duration: 120)
        #expect(result.backwards == 0, "keys went back by \(result.backwards) µs")
        // It learns the real rate: within a few hundred µs of the system clock once settled.
        #expect(result.worstErrorMicros < 500, "\(result.worstErrorMicros) µs off")
    }

    /// Steps the system clock by `offset` µs 3 s in.
    static func stepped(by offset: Double, duration: Double) -> (backwards: UInt64, worstErrorMicros: Double) {
        let clocks = SimulatedClocks(trueHz: 1_000_000_000)
        return run(clocks, nominalHz: 1_000_000_000, duration: duration, settle: duration - 1) { elapsed in
            if elapsed > 3 && clocks.wallOffsetMicros == 0 { clocks.wallOffsetMicros = offset }
        }
    }

    @Test func anNtpStepBackIsSlewedNotFollowed() {
        let result = Self.stepped(by: -200_000, duration: 30)  // NTP steps the system clock 200 ms back
        #expect(result.backwards == 0)
        // Bounded correction (1 % of a second per second): 200 ms are absorbed within about 20 s.
        #expect(result.worstErrorMicros < 20_000, "\(result.worstErrorMicros) µs off after 29 s")
    }

    @Test func aWallClockFarAheadIsFollowedAtOnce() {
        let result = Self.stepped(by: 5_000_000, duration: 10)
        #expect(result.backwards == 0)
        #expect(result.worstErrorMicros < 2_000)
    }
}

@Suite struct FlowHashTests {
    static func ipv4(
        _ source: [UInt8],
        _ destination: [UInt8],
        _ sourcePort: UInt16,
        _ destinationPort: UInt16,
        vlan: Bool = false
    ) -> [UInt8] {
        var frame: [UInt8] = Array(repeating: 0xAA, count: 6) + Array(repeating: 0xBB, count: 6)
        if vlan { frame += [0x81, 0x00, 0x00, 0x05] }
        frame += [0x08, 0x00]
        frame += [0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0] + source + destination
        frame += [
            UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8),
            UInt8(destinationPort & 0xFF),
        ]
        frame += Array(repeating: 0, count: 16)
        return frame
    }

    static func hash(_ frame: [UInt8]) -> UInt32 { frame.withUnsafeBytes { FlowHash.hash($0) } }

    @Test func bothDirectionsOfAFlowHashAlike() {
        let forward = Self.hash(Self.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 443))
        let reverse = Self.hash(Self.ipv4([10, 0, 0, 2], [10, 0, 0, 1], 443, 40000))
        #expect(forward == reverse)
        #expect(forward == Self.hash(Self.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 443, vlan: true)))
        #expect(forward != Self.hash(Self.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 40001, 443)))
        #expect(forward != Self.hash(Self.ipv4([10, 0, 0, 3], [10, 0, 0, 2], 40000, 443)))
    }

    @Test func anyFrameHashesWithoutReadingPastItsEnd() {
        for length in 0..<80 {
            var frame = Array(Self.ipv4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2).prefix(length))
            _ = Self.hash(frame)
            frame = Array(repeating: 0x86, count: length)
            _ = Self.hash(frame)
        }
        // Spread: 1000 flows over 8 partitions, none empty.
        var buckets = [Int](repeating: 0, count: 8)
        for port in 0..<1000 {
            buckets[Int(Self.hash(Self.ipv4([10, 0, 0, 1], [10, 0, 0, 2], UInt16(port + 1024), 80)) % 8)] += 1
        }
        #expect(buckets.allSatisfy { $0 > 60 })
    }
}

@Suite struct MempoolSizingTests {
    @Test func mempoolIsSizedFromTheSettings() {
        var settings = CaptureSettings()
        let one = MempoolSizing(settings: settings, ports: 1, lcores: 3).mbufs
        // queue descriptors + ring + bursts in flight, caches, plus a quarter for chains
        let needed = (1024 + 2048 + 32 * 5 + 256) + 3 * 384
        #expect(one >= needed + needed / 4)
        #expect((one + 1) & one == 0, "2^n - 1")
        settings.rxQueues = 4
        settings.ringSize = 65536
        #expect(MempoolSizing(settings: settings, ports: 2, lcores: 17).mbufs > 8 * 65536)
    }

    /// DPDK flushes a per-lcore cache only once it holds 1.5 times its size, so each lcore can keep 384
    /// mbufs, not 256: the pool counts 1.5 caches per lcore, or the rings could run short of mbufs.
    @Test func eachLcoreCacheCountsAsOneAndAHalfItsSize() {
        var settings = CaptureSettings()
        settings.rxDescriptors = 512
        settings.ringSize = 1024
        let perRing = 512 + 1024 + 32 * 5 + 256
        let needed = perRing + 17 * MempoolSizing.cacheSize * 3 / 2
        #expect(MempoolSizing(settings: settings, ports: 1, lcores: 17).mbufs >= needed + needed / 4)
    }
}

@Suite struct CaptureClockOnTheTSCTests {
    /// The real TSC, with a frequency 0.5 % off: the clock runs fast, and
    /// re-anchoring to the system clock must not step it back.
    @Test func aClockThatRunsFastNeverStepsBack() {
        // The TSC's frequency, measured (EAL is not initialised here).
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        let tscStart = CDPDK_rte_rdtsc()
        usleep(100_000)
        var stop = timespec()
        clock_gettime(CLOCK_MONOTONIC, &stop)
        let nanos = (stop.tv_sec - start.tv_sec) * 1_000_000_000 + (stop.tv_nsec - start.tv_nsec)
        let hz = (CDPDK_rte_rdtsc() - tscStart) * 1_000_000_000 / UInt64(nanos)
        var clock = CaptureClock(source: TscTimeSource(), ticksPerSecond: hz * 1000 / 1005)
        var last: UInt64 = 0
        var stepsBack = 0
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let end = now.tv_sec + 2
        repeat {
            let micros = clock.nowMicros()
            if micros < last { stepsBack += 1 }
            last = micros
            clock_gettime(CLOCK_MONOTONIC, &now)
        } while now.tv_sec < end
        #expect(stepsBack == 0)
        // Slewed, not frozen: it follows the system clock.
        clock_gettime(CLOCK_REALTIME, &now)
        let wall = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        #expect(last <= wall + 1_000_000 && last + 1_000_000 >= wall)
    }
}
