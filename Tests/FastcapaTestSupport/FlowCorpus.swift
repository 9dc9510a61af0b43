import PcapFormat

/// Records for flow-cutoff tests, in the order one receive queue would see
/// them: conversations under no tag, one tag of each TPID (0x8100, 0x88A8,
/// 0x9100), QinQ and stacks of 3, 8, 9 and 12 tags; IPv4 with options and
/// IPv6 with Hop-by-Hop, Routing, Destination Options and AH chains; TCP, UDP,
/// SCTP, ICMP, GRE, ESP and OSPF; IPv4 and IPv6 datagrams in first, middle and
/// last fragments; both directions of each conversation interleaved with the
/// others; flows that differ only by VLAN, by family (IPv4 against
/// IPv4-mapped IPv6) or by port between one host's own sockets; ARP, LLDP,
/// 802.3 and malformed IP; runts below 14 bytes; records cut at random points
/// (captured below the original length); times with gaps past
/// `timeoutMicros`, of exactly it, and a little before the previous record;
/// and many short flows, enough to overflow a small table. Deterministic.
package enum FlowCorpus {
    /// The flow timeout the times are built around.
    package static let timeoutMicros: UInt64 = 2_000_000

    package static func records(seed: UInt64 = 27, conversations: Int = 60, shortFlows: Int = 160) -> [PcapRecord] {
        var rng = SeededGenerator(seed: seed)
        var streams: [[Frame]] = []
        for index in 0..<conversations {
            streams.append(Conversation.random(index: index, rng: &rng).frames(rng: &rng))
        }
        streams += Conversation.lookalikes.map { $0.frames(rng: &rng) }
        for index in 0..<shortFlows {
            let conversation = Conversation(
                link: FrameBuilder(source: .local(UInt32(5000 + index))),
                client: .v4(IPv4Address(172, 16, UInt8(index / 250), UInt8(index % 250 + 1))),
                server: "10.9.9.9",
                ipProtocol: 17,
                clientPort: UInt16(30_000 + index),
                serverPort: 53
            )
            streams.append(
                (0..<rng.int(1...3)).map { Frame(conversation.frame(fromClient: $0 % 2 == 0, bodyCount: 40)) }
            )
        }
        streams.append(SyntheticCaptures.protocolMix(count: 300, seed: seed).map { Frame($0.data) })
        streams.append(untrackedFrames.map { Frame($0) })
        streams.append((0..<14).map { Frame(FrameBuilder.raw(count: $0, seed: UInt64($0) + 100)) })
        // A tag cut before its ID or before the EtherType after it.
        let tagged = FrameBuilder(vlans: [VLANTag(id: 42)]).frame(etherType: EtherType.ipv4, payload: [])
        streams.append((14..<18).map { Frame(Array(tagged.prefix($0)), originalLength: 60) })

        return timed(interleaved(streams, rng: &rng), rng: &rng)
    }

    /// A frame's captured bytes and its length on the wire.
    struct Frame {
        var data: [UInt8]
        var originalLength: Int

        init(_ data: [UInt8], originalLength: Int? = nil) {
            self.data = data
            self.originalLength = originalLength ?? data.count
        }
    }

    /// The streams merged, each in its own order, at most 16 open at a time;
    /// 8 % of frames cut at a random point.
    static func interleaved(_ streams: [[Frame]], rng: inout SeededGenerator) -> [Frame] {
        var waiting = streams.filter { !$0.isEmpty }
        for i in stride(from: waiting.count - 1, to: 0, by: -1) { waiting.swapAt(i, rng.int(0...i)) }
        var open: [[Frame]] = []
        var out: [Frame] = []
        while !waiting.isEmpty || !open.isEmpty {
            while open.count < 16, !waiting.isEmpty { open.append(waiting.removeLast()) }
            let i = rng.int(0...open.count - 1)
            var frame = open[i].removeFirst()
            if open[i].isEmpty { open.remove(at: i) }
            if frame.data.count > 0, rng.percent(8) {
                frame.data = Array(frame.data.prefix(rng.int(0...frame.data.count - 1)))
            }
            out.append(frame)
        }
        return out
    }

    /// Capture times: mostly a few milliseconds apart; 3 % after a gap longer
    /// than the timeout, 2 % exactly the timeout after the previous record,
    /// 5 % up to 50 ms before it.
    static func timed(_ frames: [Frame], rng: inout SeededGenerator) -> [PcapRecord] {
        var clock = SyntheticCaptures.Times.june2024
        return frames.map { frame in
            var micros = clock
            switch rng.int(0...99) {
            case 0..<3: clock += timeoutMicros + UInt64(rng.int(1...Int(timeoutMicros)))
            case 3..<5: clock += timeoutMicros
            case 5..<10: micros = clock - UInt64(rng.int(1...50_000))
            default: clock += UInt64(rng.int(1...20_000))
            }
            return PcapRecord(micros: micros, data: frame.data, originalLength: UInt32(frame.originalLength))
        }
    }

    /// Frames no flow holds: ARP, LLDP, an 802.3 length, IP headers that are
    /// not what their EtherType says, and an IPv4 header length below 20.
    static var untrackedFrames: [[UInt8]] {
        let link = FrameBuilder(vlans: [7])
        let ipv4 = link.ip(from: "10.0.0.1", to: "10.0.0.2", .udp(UDPDatagram(sourcePort: 1, destinationPort: 2)))
        var ipv4WithVersion6 = ipv4
        ipv4WithVersion6[link.headerLength] = 0x65
        var shortHeader = ipv4
        shortHeader[link.headerLength] = 0x44
        let ipv6 = link.ip(from: "2001:db8::1", to: "2001:db8::2", .udp(UDPDatagram(sourcePort: 1, destinationPort: 2)))
        var ipv6WithVersion4 = ipv6
        ipv6WithVersion4[link.headerLength] = 0x45
        return [
            link.arpRequest(senderIP: IPv4Address("10.0.0.1"), targetIP: IPv4Address("10.0.0.2")),
            FrameBuilder().arpReply(senderIP: IPv4Address("10.0.0.2"), targetIP: IPv4Address("10.0.0.1")),
            FrameBuilder().frame(etherType: 0x88CC, payload: FrameBuilder.raw(count: 46, seed: 5)),
            FrameBuilder().frame(etherType: 0x05DC, payload: FrameBuilder.raw(count: 46, seed: 6)),
            FrameBuilder(vlans: [1, 2, 3]).frame(etherType: 0x88B5, payload: FrameBuilder.raw(count: 46, seed: 7)),
            ipv4WithVersion6, shortHeader, ipv6WithVersion4,
        ]
    }

    /// One conversation's endpoints and headers; frames in either direction.
    struct Conversation {
        var link: FrameBuilder
        var client: IPAddress
        var server: IPAddress
        var ipProtocol: UInt8
        var clientPort: UInt16
        var serverPort: UInt16
        var ipv4Options: [UInt8] = []
        /// IPv6 extension headers before the transport; their Next Header bytes are filled in.
        var ipv6Chain: [(kind: UInt8, bytes: [UInt8])] = []
        /// Percent of packets sent as a datagram in three fragments.
        var fragmentPercent = 0

        static let servers: [IPAddress] = ["192.168.1.10", "192.168.1.11", "2001:db8::10", "2001:db8::11"]
        static let serverPorts: [UInt16] = [22, 53, 80, 443, 2905, 5060]
        /// TCP, UDP, SCTP, ICMP (ICMPv6 over IPv6), GRE, ESP, OSPF.
        static let protocols: [UInt8] = [6, 6, 6, 17, 17, 132, 1, 47, 50, 89]

        static func random(index: Int, rng: inout SeededGenerator) -> Conversation {
            let ipv6 = rng.percent(50)
            let server = rng.pick(servers.filter { $0.isIPv6 == ipv6 })
            let client: IPAddress =
                ipv6
                ? .v6(
                    IPv6Address(bytes: [0x20, 0x01, 0x0D, 0xB8, 0, 1] + [UInt8](repeating: 0, count: 8) + be16(index))
                )
                : .v4(IPv4Address(10, 1, UInt8(index / 250), UInt8(index % 250 + 1)))
            var ipProtocol = rng.pick(protocols)
            if ipv6, ipProtocol == 1 { ipProtocol = 58 }
            var conversation = Conversation(
                link: FrameBuilder(source: .local(UInt32(index + 10)), destination: .local(1), vlans: vlans(&rng)),
                client: client,
                server: server,
                ipProtocol: ipProtocol,
                clientPort: UInt16(rng.int(1024...65_535)),
                serverPort: rng.pick(serverPorts),
                fragmentPercent: rng.percent(30) ? 25 : 0
            )
            if !ipv6, rng.percent(30) {
                conversation.ipv4Options = rng.percent(50) ? IPv4Packet.routerAlert : [UInt8](repeating: 1, count: 40)
            }
            if ipv6, rng.percent(50) {
                conversation.ipv6Chain = (0..<rng.int(1...3)).map { _ in
                    switch rng.int(0...3) {
                    case 0: extensionHeader(0, length: 0)
                    case 1: extensionHeader(43, length: 2)
                    case 2: extensionHeader(60, length: 1)
                    default: extensionHeader(51, length: 4)
                    }
                }
            }
            return conversation
        }

        static func vlans(_ rng: inout SeededGenerator) -> [VLANTag] {
            func tag(_ tpid: UInt16) -> VLANTag {
                VLANTag(id: UInt16(rng.int(0...4095)), priority: UInt8(rng.int(0...7)), tpid: tpid)
            }
            func stack(_ count: Int) -> [VLANTag] { (0..<count).map { _ in tag(rng.pick([0x8100, 0x88A8, 0x9100])) } }
            switch rng.int(0...19) {
            case 0..<8: return []
            case 8, 9: return [tag(0x8100)]
            case 10: return [tag(0x88A8)]
            case 11: return [tag(0x9100)]
            case 12, 13: return [tag(0x88A8), tag(0x8100)]
            case 14: return [tag(0x9100), tag(0x8100)]
            case 15: return stack(3)
            case 16: return stack(8)
            case 17: return stack(9)
            default: return stack(12)
            }
        }

        /// Conversations that look alike but are different flows, or are one
        /// flow under different-looking headers.
        static var lookalikes: [Conversation] {
            let base = Conversation(
                link: FrameBuilder(vlans: [VLANTag(id: 100, tpid: 0x8100)]),
                client: "10.0.0.1",
                server: "10.0.0.2",
                ipProtocol: 17,
                clientPort: 4000,
                serverPort: 4000
            )
            var untagged = base
            untagged.link.vlans = []
            var otherVLAN = base
            otherVLAN.link.vlans = [200]
            // The same VLAN ID under another TPID and priority: the same flow.
            var otherTPID = base
            otherTPID.link.vlans = [VLANTag(id: 100, priority: 5, tpid: 0x9100)]
            var mapped = base
            mapped.client = .v6(IPv6Address(bytes: [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 10, 0, 0, 1]))
            mapped.server = .v6(IPv6Address(bytes: [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 10, 0, 0, 2]))
            var oneHost = base
            oneHost.server = oneHost.client
            oneHost.serverPort = 4001
            var oneSocket = oneHost
            oneSocket.serverPort = 4000
            var tcp = base
            tcp.ipProtocol = 6
            return [base, untagged, otherVLAN, otherTPID, mapped, oneHost, oneSocket, tcp]
        }

        /// 2 to 30 packets, the first from the client, then either way, some
        /// as fragments; bodies from empty to 1,400 bytes.
        func frames(rng: inout SeededGenerator) -> [Frame] {
            var out: [Frame] = []
            for index in 0..<rng.int(2...30) {
                let fromClient = index == 0 || rng.percent(50)
                if rng.percent(fragmentPercent) {
                    out += fragments(fromClient: fromClient, bodyCount: rng.int(48...1400)).map { Frame($0) }
                } else {
                    out.append(Frame(frame(fromClient: fromClient, bodyCount: rng.int(0...1400))))
                }
            }
            return out
        }

        func frame(fromClient: Bool, bodyCount: Int) -> [UInt8] {
            let (source, destination, builder) = fromClient ? (client, server, link) : (server, client, link.reversed)
            let bytes = transport(fromClient: fromClient, bodyCount: bodyCount)
            switch (source, destination) {
            case (.v4(let s), .v4(let d)):
                return builder.ipv4(
                    IPv4Packet(
                        source: s,
                        destination: d,
                        payload: .raw(protocol: ipProtocol, bytes: bytes),
                        options: ipv4Options
                    )
                )
            case (.v6(let s), .v6(let d)):
                let chain = Self.chained(ipv6Chain, last: ipProtocol)
                return builder.ipv6(
                    IPv6Packet(
                        source: s,
                        destination: d,
                        payload: .raw(protocol: ipv6Chain.first?.kind ?? ipProtocol, bytes: chain + bytes)
                    )
                )
            default:
                preconditionFailure("mixed address families")
            }
        }

        /// The datagram in three fragments (first, middle, last); an IPv6 one
        /// has its chain, then a Fragment header, in each.
        func fragments(fromClient: Bool, bodyCount: Int) -> [[UInt8]] {
            let (source, destination, builder) = fromClient ? (client, server, link) : (server, client, link.reversed)
            let bytes = transport(fromClient: fromClient, bodyCount: bodyCount)
            switch (source, destination) {
            case (.v4(let s), .v4(let d)):
                let packet = IPv4Packet(
                    source: s,
                    destination: d,
                    payload: .raw(protocol: ipProtocol, bytes: bytes),
                    identification: UInt16(truncatingIfNeeded: bodyCount),
                    options: ipv4Options
                )
                return builder.ipv4Fragments(packet, count: 3)
            case (.v6(let s), .v6(let d)):
                let chunk = bytes.count / 3 / 8 * 8
                let headers = ipv6Chain + [(kind: UInt8(44), bytes: [UInt8](repeating: 0, count: 8))]
                return (0..<3).map { i in
                    let start = i * chunk
                    let end = i == 2 ? bytes.count : start + chunk
                    var chain = Self.chained(headers, last: ipProtocol)
                    let fragmentStart = chain.count - 8
                    chain[fragmentStart + 2] = UInt8(start >> 8)
                    chain[fragmentStart + 3] = UInt8(start & 0xF8) | (i < 2 ? 1 : 0)
                    chain[fragmentStart + 7] = UInt8(truncatingIfNeeded: bodyCount)
                    return builder.ipv6(
                        IPv6Packet(
                            source: s,
                            destination: d,
                            payload: .raw(protocol: headers[0].kind, bytes: chain + bytes[start..<end])
                        )
                    )
                }
            default:
                preconditionFailure("mixed address families")
            }
        }

        /// The transport header (none for ESP and OSPF) and `bodyCount` bytes.
        func transport(fromClient: Bool, bodyCount: Int) -> [UInt8] {
            let (source, destination) = fromClient ? (clientPort, serverPort) : (serverPort, clientPort)
            let body = (0..<bodyCount).map { UInt8(truncatingIfNeeded: $0) }
            let ports = be16(source) + be16(destination)
            switch ipProtocol {
            case 6: return ports + [0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0] + body
            case 17: return ports + be16(UInt16(truncatingIfNeeded: 8 + bodyCount)) + [0, 0] + body
            case 132: return ports + [0xA1, 0xB2, 0xC3, 0xD4, 0, 0, 0, 0] + body
            case 1, 58: return [8, 0, 0, 0] + be16(clientPort) + be16(serverPort) + body
            case 47: return [0, 0, 0x08, 0x00] + body
            default: return body
            }
        }

        /// Extension headers with each Next Header set to the kind after it, the last to `last`.
        static func chained(_ headers: [(kind: UInt8, bytes: [UInt8])], last: UInt8) -> [UInt8] {
            var out: [UInt8] = []
            for (index, header) in headers.enumerated() {
                var bytes = header.bytes
                bytes[0] = index + 1 < headers.count ? headers[index + 1].kind : last
                out += bytes
            }
            return out
        }

        /// An extension header of `kind` sized by its length byte (AH counts 4-byte units, others 8).
        static func extensionHeader(_ kind: UInt8, length: UInt8) -> (kind: UInt8, bytes: [UInt8]) {
            let size = kind == 51 ? (Int(length) + 2) * 4 : (Int(length) + 1) * 8
            return (kind, [0, length] + [UInt8](repeating: 0xEE, count: size - 2))
        }
    }

    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    static func be16(_ value: Int) -> [UInt8] { be16(UInt16(truncatingIfNeeded: value)) }
}
