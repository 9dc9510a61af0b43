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
