/// The Internet checksum (RFC 1071): the ones' complement of the ones'
/// complement sum of 16-bit big-endian words, an odd last byte padded with 0.
package enum InternetChecksum {
    package static func sum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt32 {
        sum(bytes, from: 0, to: bytes.count, initial: initial)
    }

    /// The sum of `bytes[start..<end]` (`start` even, so words stay aligned to the packet).
    package static func sum(_ bytes: [UInt8], from start: Int, to end: Int, initial: UInt32 = 0) -> UInt32 {
        // Through a buffer pointer: array indexing is slow in debug builds.
        var sum = bytes.withUnsafeBufferPointer { buffer in
            var sum = UInt64(initial)
            var i = start
            while i + 1 < end {
                sum &+= UInt64(buffer[i]) << 8 | UInt64(buffer[i + 1])
                i += 2
            }
            if i < end { sum &+= UInt64(buffer[i]) << 8 }
            return sum
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return UInt32(sum)
    }

    package static func checksum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
        ~UInt16(sum(bytes, initial: initial))
    }

    /// The checksum over an IPv4 pseudo-header (RFC 793/768) and `segment`.
    package static func ipv4(
        source: IPv4Address,
        destination: IPv4Address,
        protocol proto: UInt8,
        segment: [UInt8]
    ) -> UInt16 {
        checksum(segment, initial: sum(source.bytes) + sum(destination.bytes) + UInt32(proto) + UInt32(segment.count))
    }

    /// The checksum over an IPv6 pseudo-header (RFC 8200 §8.1) and `segment`.
    package static func ipv6(
        source: IPv6Address,
        destination: IPv6Address,
        nextHeader: UInt8,
        segment: [UInt8]
    ) -> UInt16 {
        let length = UInt32(segment.count)
        return checksum(
            segment,
            initial: sum(source.bytes) + sum(destination.bytes) + (length >> 16) + (length & 0xFFFF)
                + UInt32(nextHeader)
        )
    }
}

extension Array where Element == UInt8 {
    mutating func append16(_ value: UInt16) {
        append(UInt8(value >> 8))
        append(UInt8(value & 0xFF))
    }

    mutating func append32(_ value: UInt32) {
        append16(UInt16(value >> 16))
        append16(UInt16(value & 0xFFFF))
    }
}

func bigEndian16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

func bigEndian32(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}

/// Writes `value` big-endian at `offset` (used to fill in checksums).
func put16(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt16) {
    bytes[offset] = UInt8(value >> 8)
    bytes[offset + 1] = UInt8(value & 0xFF)
}
