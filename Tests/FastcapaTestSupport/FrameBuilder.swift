import PcapFormat

package enum EtherType {
    package static let ipv4: UInt16 = 0x0800
    package static let arp: UInt16 = 0x0806
    package static let ipv6: UInt16 = 0x86DD
    package static let vlan: UInt16 = 0x8100
    package static let qinq: UInt16 = 0x88A8
}

/// An 802.1Q tag. Integer literals make plain tags: `vlans: [300, 100]`.
package struct VLANTag: Hashable, Sendable, ExpressibleByIntegerLiteral {
    /// 12 bits.
    package var id: UInt16
    /// 3 bits (PCP).
    package var priority: UInt8
    package var dropEligible: Bool
    /// nil picks the usual TPID: 0x88A8 (802.1ad) for the outer of two tags, 0x8100 otherwise.
    package var tpid: UInt16?

    package init(id: UInt16, priority: UInt8 = 0, dropEligible: Bool = false, tpid: UInt16? = nil) {
        self.id = id
        self.priority = priority
        self.dropEligible = dropEligible
        self.tpid = tpid
    }

    package init(integerLiteral id: UInt16) { self.init(id: id) }
}

/// The link layer of a frame (MACs, VLAN tags) plus ways to put packets in it.
/// Every frame is Ethernet II without FCS, as pcap stores it.
package struct FrameBuilder: Hashable, Sendable {
    package var source: MACAddress
    package var destination: MACAddress
    /// Outermost first; at most two make sense (QinQ) but more are written as given.
    package var vlans: [VLANTag]
    /// Shorter frames get zero padding, as a NIC pads to Ethernet's 60-byte
    /// minimum (64 with the FCS pcap leaves out). 0 keeps frames as built.
    package var minimumLength: Int

    package init(
        source: MACAddress = .local(1),
        destination: MACAddress = .local(2),
        vlans: [VLANTag] = [],
        minimumLength: Int = 60
    ) {
        self.source = source
        self.destination = destination
        self.vlans = vlans
        self.minimumLength = minimumLength
    }

    /// The other direction: MACs swapped, same tags.
    package var reversed: FrameBuilder {
        var other = self
        (other.source, other.destination) = (destination, source)
        return other
    }

    /// Bytes before the network layer: 14 plus 4 per tag.
    package var headerLength: Int { 14 + 4 * vlans.count }

    package func frame(etherType: UInt16, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(max(minimumLength, headerLength + payload.count))
        out += destination.bytes
        out += source.bytes
        for (i, tag) in vlans.enumerated() {
            out.append16(tag.tpid ?? (vlans.count >= 2 && i == 0 ? EtherType.qinq : EtherType.vlan))
            out.append16(UInt16(tag.priority & 7) << 13 | (tag.dropEligible ? 0x1000 : 0) | tag.id & 0x0FFF)
        }
        out.append16(etherType)
        out += payload
        if out.count < minimumLength { out += repeatElement(0, count: minimumLength - out.count) }
        return out
    }

    package func ipv4(_ packet: IPv4Packet) -> [UInt8] { frame(etherType: EtherType.ipv4, payload: packet.bytes()) }
    package func ipv6(_ packet: IPv6Packet) -> [UInt8] { frame(etherType: EtherType.ipv6, payload: packet.bytes()) }

    /// One frame per fragment of `packet` (see `IPv4Packet.fragmented(into:)`).
    package func ipv4Fragments(_ packet: IPv4Packet, count: Int) -> [[UInt8]] {
        packet.fragmented(into: count).map(ipv4)
    }

    /// IPv4 or IPv6 by the addresses' family (which must match).
    package func ip(
        from source: IPAddress,
        to destination: IPAddress,
        _ payload: IPPayload,
        ttl: UInt8 = 64,
        identification: UInt16 = 0,
        dontFragment: Bool = true,
        flowLabel: UInt32 = 0
    ) -> [UInt8] {
        switch (source, destination) {
        case (.v4(let s), .v4(let d)):
            ipv4(
                IPv4Packet(
                    source: s,
                    destination: d,
                    payload: payload,
                    identification: identification,
                    ttl: ttl,
                    dontFragment: dontFragment
                )
            )
        case (.v6(let s), .v6(let d)):
            ipv6(IPv6Packet(source: s, destination: d, payload: payload, hopLimit: ttl, flowLabel: flowLabel))
        default:
            preconditionFailure("mixed address families \(source) → \(destination)")
        }
    }

    /// Like `ip`, with the transport payload grown or shrunk so the whole
    /// frame is exactly `frameLength` bytes (e.g. 1514, 9014). Added bytes
    /// count up from 0; traps when the headers alone are longer.
    package func ip(
        from source: IPAddress,
        to destination: IPAddress,
        _ payload: IPPayload,
        frameLength: Int,
        ttl: UInt8 = 64,
        identification: UInt16 = 0,
        dontFragment: Bool = true
    ) -> [UInt8] {
        let network = source.isIPv6 ? 40 : 20
        let target = frameLength - headerLength - network - (payload.count - payload.bodyCount)
        precondition(target >= 0, "headers alone exceed \(frameLength) bytes")
        let frame = ip(
            from: source,
            to: destination,
            payload.withBodyCount(target),
            ttl: ttl,
            identification: identification,
            dontFragment: dontFragment
        )
        precondition(
            frame.count == frameLength,
            "\(frame.count) bytes, expected \(frameLength) (below the minimum length?)"
        )
        return frame
    }

    package enum ARPOperation: UInt16, Sendable {
        case request = 1
        case reply = 2
    }

    /// ARP for IPv4 over Ethernet (RFC 826).
    package func arp(
        _ operation: ARPOperation,
        senderMAC: MACAddress,
        senderIP: IPv4Address,
        targetMAC: MACAddress,
        targetIP: IPv4Address
    ) -> [UInt8] {
        let body =
            bigEndian16(1) + bigEndian16(EtherType.ipv4) + [6, 4] + bigEndian16(operation.rawValue)
            + senderMAC.bytes + senderIP.bytes + targetMAC.bytes + targetIP.bytes
        return frame(etherType: EtherType.arp, payload: body)
    }

    /// "Who has targetIP? Tell senderIP", broadcast from `source`.
    package func arpRequest(senderIP: IPv4Address, targetIP: IPv4Address) -> [UInt8] {
        var broadcast = self
        broadcast.destination = .broadcast
        return broadcast.arp(.request, senderMAC: source, senderIP: senderIP, targetMAC: .zero, targetIP: targetIP)
    }

    /// "senderIP is at `source`", unicast to `destination`.
    package func arpReply(senderIP: IPv4Address, targetIP: IPv4Address) -> [UInt8] {
        arp(.reply, senderMAC: source, senderIP: senderIP, targetMAC: destination, targetIP: targetIP)
    }

    /// `frame` with zeros appended up to `length` (an Ethernet trailer; no header changes).
    package static func padded(_ frame: [UInt8], to length: Int) -> [UInt8] {
        frame.count >= length ? frame : frame + [UInt8](repeating: 0, count: length - frame.count)
    }

    /// `count` arbitrary bytes (runts, garbage); the same for the same seed.
    package static func raw(count: Int, seed: UInt64 = 1) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        return generator.bytes(count)
    }
}

extension IPPayload {
    /// Bytes of application data (or of the echo body, or raw bytes).
    package var bodyCount: Int {
        switch self {
        case .tcp(let s): s.payload.count
        case .udp(let d): d.payload.count
        case .echo(let e): e.payload.count
        case .raw(_, let bytes): bytes.count
        }
    }

    /// Byte i is i mod 256; sliced rather than computed, which is slow in debug builds.
    static let filler: [UInt8] = (0..<65_536).map { UInt8(truncatingIfNeeded: $0) }

    /// The same payload with its body cut or extended to `count` bytes (by `filler`).
    package func withBodyCount(_ count: Int) -> IPPayload {
        func fit(_ body: [UInt8]) -> [UInt8] {
            body.count >= count ? Array(body.prefix(count)) : body + Self.filler[body.count..<count]
        }
        switch self {
        case .tcp(var s):
            s.payload = fit(s.payload)
            return .tcp(s)
        case .udp(var d):
            d.payload = fit(d.payload)
            return .udp(d)
        case .echo(var e):
            e.payload = fit(e.payload)
            return .echo(e)
        case .raw(let proto, let bytes): return .raw(protocol: proto, bytes: fit(bytes))
        }
    }
}

extension PcapRecord {
    /// The first `capturedLength` bytes of `frame`, remembering its full length,
    /// as a capture with a small snap length records it.
    package static func truncated(_ frame: [UInt8], to capturedLength: Int, micros: UInt64) -> PcapRecord {
        PcapRecord(micros: micros, data: Array(frame.prefix(capturedLength)), originalLength: UInt32(frame.count))
    }
}
