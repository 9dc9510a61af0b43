@testable import FastcapaCapture
import Foundation
import PcapFormat
import Testing

@Suite struct FormatTests {
    @Test func keysAreEightBytesBigEndianMicroseconds() {
        let micros: UInt64 = 1_213_789_568_367_761
        let key = CaptureKey.encode(micros: micros)
        #expect(key == [0x00, 0x04, 0x4F, 0xEF, 0x68, 0x0D, 0xFC, 0x91])
        #expect(CaptureKey.decode(key) == micros)
        #expect(CaptureKey.decode([1, 2, 3]) == nil)
    }

    @Test func pcapRoundTripsBothByteOrders() throws {
        let records = [PcapRecord(micros: 1_500_000_000_123_456, data: [1, 2, 3], originalLength: 60),
                       PcapRecord(micros: 0, data: []), PcapRecord(micros: 4_294_967_295_999_999, data: Array(repeating: 7, count: 70_000))]
        let file = PcapFile(records: records)
        let parsed = try PcapFile(bytes: file.bytes())
        #expect(parsed.records == records)
        // The same file written big-endian by hand.
        var big: [UInt8] = [0xA1, 0xB2, 0xC3, 0xD4, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 1]
        big += [0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 2, 0xAB, 0xCD]
        let bigParsed = try PcapFile(bytes: big)
        #expect(bigParsed.records == [PcapRecord(micros: 10_000_020, data: [0xAB, 0xCD])])
        #expect(throws: PcapError.self) { try PcapFile(bytes: Array(big.dropLast())) }
        #expect(throws: PcapError.self) { try PcapFile(bytes: [1, 2, 3]) }
    }

    @Test func sharedCapturesParse() throws {
        let folder = Harness.pcapFolder
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".pcap") }
        #expect(files.count == 196)
        var total = 0
        for file in files {
            total += try PcapFile(bytes: [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))).records.count
        }
        #expect(total == 4798)
    }

    @Test func pcapTimesPast2038AreRecovered() {
        let device = DeviceTimestamp(fieldOffset: 0, flag: 0, unitsPerMicro: 1)
        // libpcap hands net_pcap 2^31 s as -2^31 s.
        let negative = UInt64(bitPattern: Int64(-2_147_483_648) * 1_000_000)
        #expect(device.micros(negative) == 2_147_483_648 * 1_000_000)
        #expect(device.micros(1_213_789_568_367_761) == 1_213_789_568_367_761)
    }

    @Test func clockScalingNeverOverflows() {
        // 3 GHz: a day of ticks is 2.6e14, times 1e6 would overflow 64 bits.
        let factor = (UInt64(1_000_000) << 32) / 3_000_000_000
        let day = UInt64(86_400) * 3_000_000_000
        let micros = CaptureClock.scale(day, by: factor)
        #expect(micros > 86_399_000_000 && micros <= 86_400_000_000)
        #expect(CaptureClock.scale(3_000_000_000, by: factor) / 1000 == 999)
    }
}

@Suite struct FlowHashTests {
    static func ipv4(_ source: [UInt8], _ destination: [UInt8], _ sourcePort: UInt16, _ destinationPort: UInt16, vlan: Bool = false) -> [UInt8] {
        var frame: [UInt8] = Array(repeating: 0xAA, count: 6) + Array(repeating: 0xBB, count: 6)
        if vlan { frame += [0x81, 0x00, 0x00, 0x05] }
        frame += [0x08, 0x00]
        frame += [0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0] + source + destination
        frame += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
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
