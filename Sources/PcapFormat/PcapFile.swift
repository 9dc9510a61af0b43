/// Classic libpcap files: reading (either byte order, microsecond or
/// nanosecond timestamps) and writing (native order, microseconds).
package struct PcapRecord: Equatable, Sendable {
    /// Capture time in epoch microseconds.
    package var micros: UInt64
    /// The captured bytes (possibly fewer than `originalLength`).
    package var data: [UInt8]
    package var originalLength: UInt32

    package init(micros: UInt64, data: [UInt8], originalLength: UInt32? = nil) {
        self.micros = micros
        self.data = data
        self.originalLength = originalLength ?? UInt32(data.count)
    }
}

package struct PcapError: Error, CustomStringConvertible {
    package var description: String
    package init(description: String) { self.description = description }
}

package struct PcapFile: Sendable {
    package var linkType: UInt32
    package var snapLength: UInt32
    package var records: [PcapRecord]

    package init(linkType: UInt32 = 1, snapLength: UInt32 = 262_144, records: [PcapRecord] = []) {
        self.linkType = linkType
        self.snapLength = snapLength
        self.records = records
    }

    package init(bytes: [UInt8]) throws {
        guard bytes.count >= 24 else { throw PcapError(description: "shorter than a pcap file header (24 bytes)") }
        let magic = Self.read32(bytes, 0, bigEndian: false)
        let bigEndian: Bool
        let nanos: Bool
        switch magic {
        case 0xA1B2_C3D4: (bigEndian, nanos) = (false, false)
        case 0xA1B2_3C4D: (bigEndian, nanos) = (false, true)
        case 0xD4C3_B2A1: (bigEndian, nanos) = (true, false)
        case 0x4D3C_B2A1: (bigEndian, nanos) = (true, true)
        default: throw PcapError(description: "not a classic pcap file (magic 0x\(String(magic, radix: 16)))")
        }
        snapLength = Self.read32(bytes, 16, bigEndian: bigEndian)
        linkType = Self.read32(bytes, 20, bigEndian: bigEndian)
        records = []
        var offset = 24
        while offset < bytes.count {
            guard offset + 16 <= bytes.count else {
                throw PcapError(description: "record header cut short at byte \(offset)")
            }
            let seconds = UInt64(Self.read32(bytes, offset, bigEndian: bigEndian))
            let fraction = UInt64(Self.read32(bytes, offset + 4, bigEndian: bigEndian))
            let captured = Int(Self.read32(bytes, offset + 8, bigEndian: bigEndian))
            let original = Self.read32(bytes, offset + 12, bigEndian: bigEndian)
            offset += 16
            guard offset + captured <= bytes.count else {
                throw PcapError(description: "record data cut short at byte \(offset)")
            }
            records.append(
                PcapRecord(
                    micros: seconds * 1_000_000 + (nanos ? fraction / 1000 : fraction),
                    data: Array(bytes[offset..<offset + captured]),
                    originalLength: original
                )
            )
            offset += captured
        }
    }

    package static func header(linkType: UInt32, snapLength: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        append32(&bytes, 0xA1B2_C3D4)
        append16(&bytes, 2)
        append16(&bytes, 4)
        append32(&bytes, 0)
        append32(&bytes, 0)
        append32(&bytes, snapLength)
        append32(&bytes, linkType)
        return bytes
    }

    package static func recordBytes(_ record: PcapRecord) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 + record.data.count)
        append32(&bytes, UInt32(truncatingIfNeeded: record.micros / 1_000_000))
        append32(&bytes, UInt32(record.micros % 1_000_000))
        append32(&bytes, UInt32(record.data.count))
        append32(&bytes, max(record.originalLength, UInt32(record.data.count)))
        bytes += record.data
        return bytes
    }

    package func bytes() -> [UInt8] {
        var bytes = Self.header(linkType: linkType, snapLength: snapLength)
        for record in records { bytes += Self.recordBytes(record) }
        return bytes
    }

    static func read32(_ bytes: [UInt8], _ offset: Int, bigEndian: Bool) -> UInt32 {
        let b = bytes[offset..<offset + 4].map(UInt32.init)
        return bigEndian ? b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3] : b[3] << 24 | b[2] << 16 | b[1] << 8 | b[0]
    }

    static func append32(_ bytes: inout [UInt8], _ value: UInt32) {
        bytes += [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)]
    }

    static func append16(_ bytes: inout [UInt8], _ value: UInt16) {
        bytes += [UInt8(value & 0xFF), UInt8(value >> 8)]
    }
}
