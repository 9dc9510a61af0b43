/// The flow a frame belongs to, as a fixed 64-byte key with no padding, so it
/// can be an `rte_hash` key byte for byte: equal flows have equal bytes.
///
/// A flow is its VLAN IDs (in order), its IP version, its protocol and the
/// unordered pair of its endpoints: both directions of a conversation give one
/// key. Ports count for TCP, UDP and SCTP only and are 0 for every other
/// protocol and for every fragment, so all fragments of a datagram share a flow.
///
/// Layout (offsets in bytes; addresses in network byte order, ports, IDs and
/// the count in host byte order, as the lcore that builds the key and the
/// table that holds it share a host):
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0  | 16 | `lowerAddress`: the endpoint that sorts first by (address, port) |
/// | 16 | 16 | `upperAddress` |
/// | 32 | 8  | `vlanDigest`: the tags past the eighth, folded; 0 with eight or fewer |
/// | 40 | 16 | `vlanIDs`: the first eight VLAN IDs, outermost first, 0 past `vlanCount` |
/// | 56 | 2  | `lowerPort` |
/// | 58 | 2  | `upperPort` |
/// | 60 | 2  | `vlanCount`: every tag, including those folded into the digest |
/// | 62 | 1  | `ipVersion`: 4 or 6 |
/// | 63 | 1  | `ipProtocol`: IPv4's Protocol, IPv6's last Next Header read |
///
/// An IPv4 address is stored IPv4-mapped (`::ffff:a.b.c.d`); `ipVersion` keeps it
/// apart from the same IPv6 address. Two different tag stacks give different
/// keys unless both have more than eight tags, agree on the first eight and on
/// their count, and their further tags' 64-bit digests collide.
package struct FlowKey: Hashable, Sendable, BitwiseCopyable {
    /// 16 bytes as two words whose memory is the address in network byte order.
    package typealias Address = (UInt64, UInt64)
    package typealias VLANIDs = (UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16)

    package static let byteCount = 64
    /// VLAN IDs held one by one; the rest go into `vlanDigest`.
    package static let storedVLANCount = 8

    package var lowerAddress: Address
    package var upperAddress: Address
    package var vlanDigest: UInt64
    package var vlanIDs: VLANIDs
    package var lowerPort: UInt16
    package var upperPort: UInt16
    package var vlanCount: UInt16
    package var ipVersion: UInt8
    package var ipProtocol: UInt8

    /// The VLAN ID of tag `index` (outermost is 0), for `index` below `storedVLANCount`.
    package func vlanID(_ index: Int) -> UInt16 {
        precondition(index >= 0 && index < Self.storedVLANCount, "only \(Self.storedVLANCount) VLAN IDs are stored")
        return Swift.withUnsafeBytes(of: vlanIDs) { $0.load(fromByteOffset: 2 * index, as: UInt16.self) }
    }

    /// The key as the bytes a hash table stores.
    package func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try Swift.withUnsafeBytes(of: self, body)
    }

    package static func == (lhs: FlowKey, rhs: FlowKey) -> Bool {
        Swift.withUnsafeBytes(of: lhs) { left in
            Swift.withUnsafeBytes(of: rhs) { right in
                var difference: UInt64 = 0
                for word in 0..<(byteCount / 8) {
                    difference |=
                        left.load(fromByteOffset: 8 * word, as: UInt64.self)
                        ^ right.load(fromByteOffset: 8 * word, as: UInt64.self)
                }
                return difference == 0
            }
        }
    }

    package func hash(into hasher: inout Hasher) {
        withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

extension FlowKey {
    /// The flow of a frame's captured bytes (Ethernet II, any number of VLAN
    /// tags), or nil when it is untracked: not IPv4 or IPv6, or cut before the
    /// IP header with its options or extension headers, or, for an unfragmented
    /// TCP, UDP or SCTP packet, before its ports.
    @inline(__always)
    package static func parse(_ frame: UnsafeRawBufferPointer) -> FlowKey? {
        parseFrame(frame)?.key
    }

    /// `parse`, also saying whether the packet is a fragment (IPv4 with More
    /// Fragments or an offset, IPv6 with a Fragment header).
    package static func parseFrame(_ frame: UnsafeRawBufferPointer) -> (key: FlowKey, isFragment: Bool)? {
        let count = frame.count
        guard count >= 14 else { return nil }
        var key = FlowKey.zero
        var tags = 0
        var offset = 12
        var etherType = FlowHash.read16(frame, offset)
        while etherType == 0x8100 || etherType == 0x88A8 || etherType == 0x9100 {
            guard count >= offset + 6 else { return nil }
            let id = FlowHash.read16(frame, offset + 2) & 0x0FFF
            if tags < storedVLANCount {
                Swift.withUnsafeMutableBytes(of: &key.vlanIDs) {
                    $0.storeBytes(of: id, toByteOffset: 2 * tags, as: UInt16.self)
                }
            } else {
                key.vlanDigest = FlowHash.mix(key.vlanDigest, UInt64(id))
            }
            tags += 1
            offset += 4
            etherType = FlowHash.read16(frame, offset)
        }
        key.vlanCount = UInt16(clamping: tags)
        offset += 2

        let transport: Int
        let isFragment: Bool
        let addressA: Address
        let addressB: Address
        switch etherType {
        case 0x0800:
            guard count >= offset + 20, frame[offset] >> 4 == 4 else { return nil }
            let headerLength = Int(frame[offset] & 0x0F) * 4
            guard headerLength >= 20, count >= offset + headerLength else { return nil }
            key.ipVersion = 4
            key.ipProtocol = frame[offset + 9]
            isFragment = FlowHash.read16(frame, offset + 6) & 0x3FFF != 0
            addressA = ipv4Mapped(frame, offset + 12)
            addressB = ipv4Mapped(frame, offset + 16)
            transport = offset + headerLength
        case 0x86DD:
            guard count >= offset + 40, frame[offset] >> 4 == 6 else { return nil }
            key.ipVersion = 6
            addressA = address(frame, offset + 8)
            addressB = address(frame, offset + 24)
            guard let last = lastHeader(frame, nextHeader: frame[offset + 6], at: offset + 40) else { return nil }
            key.ipProtocol = last.protocol
            isFragment = last.isFragment
            transport = last.offset
        default:
            return nil
        }

        var portA: UInt16 = 0
        var portB: UInt16 = 0
        if !isFragment, key.ipProtocol == 6 || key.ipProtocol == 17 || key.ipProtocol == 132 {
            guard count >= transport + 4 else { return nil }
            portA = FlowHash.read16(frame, transport)
            portB = FlowHash.read16(frame, transport + 2)
        }
        if sortsFirst(addressB, portB, before: addressA, portA) {
            (key.lowerAddress, key.lowerPort, key.upperAddress, key.upperPort) = (addressB, portB, addressA, portA)
        } else {
            (key.lowerAddress, key.lowerPort, key.upperAddress, key.upperPort) = (addressA, portA, addressB, portB)
        }
        return (key, isFragment)
    }

    /// IPv6's chain from `nextHeader` at `offset`: Hop-by-Hop (0), Routing (43)
    /// and Destination Options (60) are (length + 1) × 8 bytes, AH (51) is
    /// (length + 2) × 4, each wholly captured; a Fragment header (44) ends the
    /// walk with its own Next Header as the protocol. nil when the chain is cut.
    @inline(__always)
    static func lastHeader(
        _ frame: UnsafeRawBufferPointer,
        nextHeader first: UInt8,
        at start: Int
    ) -> (protocol: UInt8, isFragment: Bool, offset: Int)? {
        var nextHeader = first
        var offset = start
        while true {
            switch nextHeader {
            case 0, 43, 60, 51:
                guard frame.count >= offset + 2 else { return nil }
                let length =
                    nextHeader == 51 ? (Int(frame[offset + 1]) + 2) * 4 : (Int(frame[offset + 1]) + 1) * 8
                guard frame.count >= offset + length else { return nil }
                nextHeader = frame[offset]
                offset += length
            case 44:
                guard frame.count >= offset + 8 else { return nil }
                return (frame[offset], true, offset + 8)
            default:
                return (nextHeader, false, offset)
            }
        }
    }

    /// Whether (a, portA) comes before (b, portB), addresses compared as big-endian numbers.
    @inline(__always)
    static func sortsFirst(_ a: Address, _ portA: UInt16, before b: Address, _ portB: UInt16) -> Bool {
        let (a0, a1, b0, b1) = (
            UInt64(bigEndian: a.0), UInt64(bigEndian: a.1), UInt64(bigEndian: b.0), UInt64(bigEndian: b.1)
        )
        if a0 != b0 { return a0 < b0 }
        if a1 != b1 { return a1 < b1 }
        return portA < portB
    }

    static let zero = FlowKey(
        lowerAddress: (0, 0),
        upperAddress: (0, 0),
        vlanDigest: 0,
        vlanIDs: (0, 0, 0, 0, 0, 0, 0, 0),
        lowerPort: 0,
        upperPort: 0,
        vlanCount: 0,
        ipVersion: 0,
        ipProtocol: 0
    )

    @inline(__always)
    static func address(_ frame: UnsafeRawBufferPointer, _ offset: Int) -> Address {
        (
            frame.loadUnaligned(fromByteOffset: offset, as: UInt64.self),
            frame.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
        )
    }

    /// `::ffff:a.b.c.d` for the IPv4 address at `offset`.
    @inline(__always)
    static func ipv4Mapped(_ frame: UnsafeRawBufferPointer, _ offset: Int) -> Address {
        let value = UInt32(bigEndian: frame.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        return (0, (0xFFFF_0000_0000 | UInt64(value)).bigEndian)
    }
}
