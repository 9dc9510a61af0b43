/// A symmetric software hash of a frame's flow, for devices that give no RSS
/// hash: both directions of a conversation hash alike, so a flow and its
/// replies land in one partition, in order.
///
/// Reads Ethernet (with up to two VLAN tags), IPv4 and IPv6 addresses, and TCP,
/// UDP and SCTP ports of unfragmented packets; other frames hash by MAC addresses.
package enum FlowHash {
    package static func hash(_ frame: UnsafeRawBufferPointer) -> UInt32 {
        let count = frame.count
        guard count >= 14 else { return UInt32(truncatingIfNeeded: mix(0x9E37_79B9, UInt64(count))) }
        var offset = 12
        var etherType = read16(frame, offset)
        var tags = 0
        while (etherType == 0x8100 || etherType == 0x88A8) && tags < 2 && count >= offset + 6 {
            offset += 4
            etherType = read16(frame, offset)
            tags += 1
        }
        offset += 2
        switch etherType {
        case 0x0800 where count >= offset + 20:
            let headerLength = Int(frame[offset] & 0x0F) * 4
            let proto = frame[offset + 9]
            let fragment = read16(frame, offset + 6) & 0x3FFF
            let source = UInt64(read32(frame, offset + 12))
            let destination = UInt64(read32(frame, offset + 16))
            let ports = fragment == 0 ? readPorts(frame, offset + headerLength, proto) : (0, 0)
            return symmetric(source, ports.0, destination, ports.1, proto)
        case 0x86DD where count >= offset + 40:
            let proto = frame[offset + 6]
            let source = read64(frame, offset + 8) ^ read64(frame, offset + 16)
            let destination = read64(frame, offset + 24) ^ read64(frame, offset + 32)
            let ports = readPorts(frame, offset + 40, proto)
            return symmetric(source, ports.0, destination, ports.1, proto)
        default:
            let destination = read64(frame, 0) >> 16
            let source = (read64(frame, 6) >> 16)
            return symmetric(source, 0, destination, 0, 0)
        }
    }

    @inline(__always)
    static func symmetric(_ a: UInt64, _ portA: UInt16, _ b: UInt64, _ portB: UInt16, _ proto: UInt8) -> UInt32 {
        let one = mix(a, UInt64(portA))
        let two = mix(b, UInt64(portB))
        return UInt32(truncatingIfNeeded: mix(min(one, two) &+ UInt64(proto), max(one, two)))
    }

    /// A 64-bit finaliser (splitmix64) over two words.
    @inline(__always)
    static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var z = a &+ 0x9E37_79B9_7F4A_7C15 &+ (b &* 0xBF58_476D_1CE4_E5B9)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    static func readPorts(_ frame: UnsafeRawBufferPointer, _ offset: Int, _ proto: UInt8) -> (UInt16, UInt16) {
        guard proto == 6 || proto == 17 || proto == 132, frame.count >= offset + 4 else { return (0, 0) }
        return (read16(frame, offset), read16(frame, offset + 2))
    }

    @inline(__always)
    static func read16(_ frame: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        UInt16(frame[offset]) << 8 | UInt16(frame[offset + 1])
    }

    @inline(__always)
    static func read32(_ frame: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(read16(frame, offset)) << 16 | UInt32(read16(frame, offset + 2))
    }

    @inline(__always)
    static func read64(_ frame: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        guard frame.count >= offset + 8 else { return 0 }
        return UInt64(read32(frame, offset)) << 32 | UInt64(read32(frame, offset + 4))
    }
}
