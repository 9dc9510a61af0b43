/// Network and transport layers. Lengths and checksums are computed when a
/// packet is turned into bytes, so a test changes a field and gets a packet
/// that tcpdump and tshark still decode as valid.

package struct TCPFlags: OptionSet, Hashable, Sendable {
    package let rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }
    package static let fin = TCPFlags(rawValue: 0x01)
    package static let syn = TCPFlags(rawValue: 0x02)
    package static let rst = TCPFlags(rawValue: 0x04)
    package static let psh = TCPFlags(rawValue: 0x08)
    package static let ack = TCPFlags(rawValue: 0x10)
    package static let urg = TCPFlags(rawValue: 0x20)
    package static let ece = TCPFlags(rawValue: 0x40)
    package static let cwr = TCPFlags(rawValue: 0x80)
}

package struct TCPSegment: Hashable, Sendable {
    package var sourcePort: UInt16
    package var destinationPort: UInt16
    package var sequence: UInt32
    package var acknowledgment: UInt32
    package var flags: TCPFlags
    package var window: UInt16
    package var urgentPointer: UInt16
    /// Raw option bytes; padded with zeros (end of option list) to 4 bytes.
    package var options: [UInt8]
    package var payload: [UInt8]

    package init(
        sourcePort: UInt16,
        destinationPort: UInt16,
        sequence: UInt32 = 0,
        acknowledgment: UInt32 = 0,
        flags: TCPFlags,
        window: UInt16 = 64_240,
        urgentPointer: UInt16 = 0,
        options: [UInt8] = [],
        payload: [UInt8] = []
    ) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequence = sequence
        self.acknowledgment = acknowledgment
        self.flags = flags
        self.window = window
        self.urgentPointer = urgentPointer
        self.options = options
        self.payload = payload
    }

    /// The maximum-segment-size option, as sent on SYNs.
    package static func mss(_ value: UInt16) -> [UInt8] { [2, 4] + bigEndian16(value) }

    /// Header bytes, without payload.
    package var headerLength: Int { 20 + (options.count + 3) / 4 * 4 }
}

package struct UDPDatagram: Hashable, Sendable {
    package var sourcePort: UInt16
    package var destinationPort: UInt16
    package var payload: [UInt8]

    package init(sourcePort: UInt16, destinationPort: UInt16, payload: [UInt8] = []) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.payload = payload
    }
}

/// An echo request or reply: ICMP (type 8/0) over IPv4, ICMPv6 (128/129) over IPv6.
package struct ICMPEcho: Hashable, Sendable {
    package var isReply: Bool
    package var identifier: UInt16
    package var sequence: UInt16
    package var payload: [UInt8]

    package init(isReply: Bool = false, identifier: UInt16, sequence: UInt16, payload: [UInt8] = ICMPEcho.pingPayload) {
        self.isReply = isReply
        self.identifier = identifier
        self.sequence = sequence
        self.payload = payload
    }

    /// 56 bytes like Linux ping's default: 0x10, 0x11, ... (no timestamp, so stable).
    package static let pingPayload: [UInt8] = (0..<56).map { UInt8(0x10 + $0) }
}

package enum IPPayload: Hashable, Sendable {
    case tcp(TCPSegment)
    case udp(UDPDatagram)
    case echo(ICMPEcho)
    /// Bytes after the IP header as they are: no checksum is touched. Fragments use it.
    case raw(protocol: UInt8, bytes: [UInt8])

    package func protocolNumber(ipv6: Bool) -> UInt8 {
        switch self {
        case .tcp: 6
        case .udp: 17
        case .echo: ipv6 ? 58 : 1
        case .raw(let proto, _): proto
        }
    }

    /// Serialized length in bytes.
    package var count: Int {
        switch self {
        case .tcp(let s): s.headerLength + s.payload.count
        case .udp(let d): 8 + d.payload.count
        case .echo(let e): 8 + e.payload.count
        case .raw(_, let bytes): bytes.count
        }
    }

    /// Bytes with the checksum filled in; `pseudo` folds in the IP pseudo-header
    /// for a given protocol and transport length.
    func bytes(ipv6: Bool, pseudo: (UInt8, [UInt8]) -> UInt16) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        switch self {
        case .tcp(let s):
            precondition(s.options.count <= 40, "TCP options are at most 40 bytes")
            let padding = (4 - s.options.count % 4) % 4
            out.append16(s.sourcePort)
            out.append16(s.destinationPort)
            out.append32(s.sequence)
            out.append32(s.acknowledgment)
            out.append16(UInt16((20 + s.options.count + padding) / 4) << 12 | UInt16(s.flags.rawValue))
            out.append16(s.window)
            out.append16(0)
            out.append16(s.urgentPointer)
            out += s.options
            out += repeatElement(0, count: padding)
            out += s.payload
            put16(&out, 16, pseudo(6, out))
        case .udp(let d):
            out.append16(d.sourcePort)
            out.append16(d.destinationPort)
            out.append16(UInt16(8 + d.payload.count))
            out.append16(0)
            out += d.payload
            let sum = pseudo(17, out)
            put16(&out, 6, sum == 0 ? 0xFFFF : sum)  // 0 means "no checksum" in UDP
        case .echo(let e):
            out += [ipv6 ? (e.isReply ? 129 : 128) : (e.isReply ? 0 : 8), 0, 0, 0]
            out.append16(e.identifier)
            out.append16(e.sequence)
            out += e.payload
            // ICMPv6 covers the pseudo-header; ICMP for IPv4 does not.
            put16(&out, 2, ipv6 ? pseudo(58, out) : InternetChecksum.checksum(out))
        case .raw(_, let bytes):
            out = bytes
        }
        return out
    }
}

package struct IPv4Packet: Hashable, Sendable {
    package var source: IPv4Address
    package var destination: IPv4Address
    package var payload: IPPayload
    package var identification: UInt16
    package var ttl: UInt8
    package var tos: UInt8
    package var dontFragment: Bool
    package var moreFragments: Bool
    /// In bytes; must be a multiple of 8 (the header holds it in 8-byte units).
    package var fragmentOffset: Int
    /// Raw option bytes; padded with zeros (end of option list) to 4 bytes, raising IHL.
    package var options: [UInt8]

    package init(
        source: IPv4Address,
        destination: IPv4Address,
        payload: IPPayload,
        identification: UInt16 = 0,
        ttl: UInt8 = 64,
        tos: UInt8 = 0,
        dontFragment: Bool = false,
        moreFragments: Bool = false,
        fragmentOffset: Int = 0,
        options: [UInt8] = []
    ) {
        self.source = source
        self.destination = destination
        self.payload = payload
        self.identification = identification
        self.ttl = ttl
        self.tos = tos
        self.dontFragment = dontFragment
        self.moreFragments = moreFragments
        self.fragmentOffset = fragmentOffset
        self.options = options
    }

    /// Router Alert (RFC 2113), a common real-world option: IHL becomes 6.
    package static let routerAlert: [UInt8] = [0x94, 0x04, 0x00, 0x00]

    package var headerLength: Int { 20 + (options.count + 3) / 4 * 4 }
    package var count: Int { headerLength + payload.count }

    package func bytes() -> [UInt8] {
        let transport = transportBytes()
        var out = header(payloadLength: transport.count)
        out += transport
        return out
    }

    func transportBytes() -> [UInt8] {
        payload.bytes(ipv6: false) { proto, segment in
            InternetChecksum.ipv4(source: source, destination: destination, protocol: proto, segment: segment)
        }
    }

    func header(payloadLength: Int) -> [UInt8] {
        precondition(fragmentOffset % 8 == 0 && fragmentOffset < 65_536, "fragment offset \(fragmentOffset)")
        precondition(options.count <= 40, "IPv4 options are at most 40 bytes")
        let padding = (4 - options.count % 4) % 4
        let total = 20 + options.count + padding + payloadLength
        precondition(total <= 65_535, "an IPv4 packet holds at most 65,535 bytes, not \(total)")
        var out: [UInt8] = []
        out.reserveCapacity(total)
        out += [0x40 | UInt8((20 + options.count + padding) / 4), tos]
        out.append16(UInt16(total))
        out.append16(identification)
        out.append16((dontFragment ? 0x4000 : 0) | (moreFragments ? 0x2000 : 0) | UInt16(fragmentOffset / 8))
        out += [ttl, payload.protocolNumber(ipv6: false), 0, 0]
        out += source.bytes
        out += destination.bytes
        out += options
        out += repeatElement(0, count: padding)
        put16(&out, 10, InternetChecksum.checksum(out))
        return out
    }

    /// This packet split into exactly `count` fragments, as a router would:
    /// the transport checksum covers the whole datagram, the first fragment
    /// holds the transport header, later ones carry offsets, all but the last
    /// set More Fragments. Fragments are 8-byte multiples except the last,
    /// which takes the remainder (so it may be the largest).
    package func fragmented(into count: Int) -> [IPv4Packet] {
        let transport = transportBytes()
        precondition(
            count >= 1 && transport.count >= 8 * count,
            "\(transport.count) bytes cannot make \(count) fragments"
        )
        let chunk = transport.count / count / 8 * 8
        return (0..<count).map { i in
            let start = i * chunk
            let end = i == count - 1 ? transport.count : start + chunk
            var fragment = self
            fragment.payload = .raw(protocol: payload.protocolNumber(ipv6: false), bytes: Array(transport[start..<end]))
            fragment.dontFragment = false
            fragment.moreFragments = i < count - 1 || moreFragments
            fragment.fragmentOffset = fragmentOffset + start
            return fragment
        }
    }
}

package struct IPv6Packet: Hashable, Sendable {
    package var source: IPv6Address
    package var destination: IPv6Address
    package var payload: IPPayload
    package var hopLimit: UInt8
    package var trafficClass: UInt8
    /// 20 bits.
    package var flowLabel: UInt32

    package init(
        source: IPv6Address,
        destination: IPv6Address,
        payload: IPPayload,
        hopLimit: UInt8 = 64,
        trafficClass: UInt8 = 0,
        flowLabel: UInt32 = 0
    ) {
        self.source = source
        self.destination = destination
        self.payload = payload
        self.hopLimit = hopLimit
        self.trafficClass = trafficClass
        self.flowLabel = flowLabel
    }

    package var count: Int { 40 + payload.count }

    package func bytes() -> [UInt8] {
        let transport = payload.bytes(ipv6: true) { next, segment in
            InternetChecksum.ipv6(source: source, destination: destination, nextHeader: next, segment: segment)
        }
        precondition(transport.count <= 65_535, "IPv6 payload length \(transport.count) needs a jumbogram")
        var out: [UInt8] = []
        out.reserveCapacity(40 + transport.count)
        out.append32(UInt32(6) << 28 | UInt32(trafficClass) << 20 | flowLabel & 0xF_FFFF)
        out.append16(UInt16(transport.count))
        out += [payload.protocolNumber(ipv6: true), hopLimit]
        out += source.bytes
        out += destination.bytes
        out += transport
        return out
    }
}
