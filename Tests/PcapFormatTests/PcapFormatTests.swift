import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

@Suite struct PcapFormatTests {
    @Test func keysAreEightBytesBigEndianMicroseconds() {
        let micros: UInt64 = 1_213_789_568_367_761
        let key = CaptureKey.encode(micros: micros)
        #expect(key == [0x00, 0x04, 0x4F, 0xEF, 0x68, 0x0D, 0xFC, 0x91])
        #expect(CaptureKey.decode(key) == micros)
        #expect(CaptureKey.decode([1, 2, 3]) == nil)
    }

    @Test func pcapRoundTripsBothByteOrders() throws {
        let records = [
            PcapRecord(micros: 1_500_000_000_123_456, data: [1, 2, 3], originalLength: 60),
            PcapRecord(micros: 0, data: []),
            PcapRecord(micros: 4_294_967_295_999_999, data: Array(repeating: 7, count: 70_000)),
        ]
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

    @Test(.sharedCorpus) func sharedCapturesParse() throws {
        let files = try SharedCorpus.files()
        #expect(files.count == 196)
        var total = 0
        for file in files {
            total += try PcapFile(bytes: [UInt8](Data(contentsOf: file))).records.count
        }
        #expect(total == 4798)
    }
}
