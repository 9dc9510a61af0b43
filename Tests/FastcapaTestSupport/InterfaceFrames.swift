extension SyntheticCaptures {
    /// Frames a Linux interface with MTU `mtu` carries when a packet socket
    /// (tcpreplay) sends them into the other end of a veth pair, in send order:
    ///
    /// - `protocolMix(count: mixCount, seed:)` (60 to 1514 bytes, VLAN, QinQ, a fragmented datagram);
    /// - jumbo frames: TCP, UDP and IPv6 of 1515, 2048, 4096 and 8000 bytes, and `mtu` + 14 (9,014 for 9,000);
    /// - VLAN tags: 802.1Q with priority and drop-eligible bits at 64, 1518 and `mtu` + 18 bytes (the one tag a
    ///   packet socket may send beyond the MTU); 802.1ad + 802.1Q (QinQ) at 68 and `mtu` + 14; 802.1Q in 802.1Q
    ///   at `mtu` + 18;
    /// - IPv4 fragments (`fragmentedDatagrams`): a 4,000-byte UDP datagram in 4, a datagram half again as long as
    ///   the MTU in 2 (reassembled, longer than any frame the interface carries), a 60-byte datagram in 3 whose
    ///   fragments are padded to 60 bytes, one tagged (VLAN 300) in 2, and a datagram whose last fragment is never
    ///   sent (`incompleteDatagram`);
    /// - runts shorter than Ethernet's 60 bytes: a bare 14-byte header, 20 bytes, an unpadded 42-byte ARP request;
    ///   a UDP frame with a 4-byte trailer after its IP packet.
    package static func kernelInterfaceMix(mtu: Int = 9000, mixCount: Int = 400, seed: UInt64 = 1) -> [[UInt8]] {
        var frames = protocolMix(count: mixCount, seed: seed).map(\.data)
        let out = FrameBuilder(source: .local(21), destination: .local(22))
        let c4: IPAddress = "10.9.0.1"
        let s4: IPAddress = "10.9.0.2"
        let c6: IPAddress = "2001:db8:9::1"
        let s6: IPAddress = "2001:db8:9::2"
        func tcp(_ port: UInt16) -> IPPayload {
            .tcp(
                TCPSegment(sourcePort: port, destinationPort: 443, sequence: 7, acknowledgment: 9, flags: [.ack, .psh])
            )
        }
        func udp(_ port: UInt16) -> IPPayload { .udp(UDPDatagram(sourcePort: port, destinationPort: 9)) }
        for (i, length) in [1515, 2048, 4096, 8000, mtu + 14].enumerated() {
            let port = 41_000 + UInt16(i) * 3
            frames.append(out.ip(from: c4, to: s4, tcp(port), frameLength: length))
            frames.append(out.ip(from: c4, to: s4, udp(port + 1), frameLength: length, dontFragment: true))
            frames.append(out.ip(from: c6, to: s6, udp(port + 2), frameLength: length))
        }
        let dot1q = FrameBuilder(source: .local(23), destination: .local(24), vlans: [VLANTag(id: 42, priority: 5)])
        let eligible = FrameBuilder(vlans: [VLANTag(id: 43, priority: 1, dropEligible: true)])
        let qinq = FrameBuilder(source: .local(25), destination: .local(26), vlans: [1000, 100])
        let dot1qInDot1q = FrameBuilder(vlans: [VLANTag(id: 7, tpid: EtherType.vlan), 8])
        for (builder, lengths) in [
            (dot1q, [64, 1518, mtu + 18]), (eligible, [100, mtu + 18]), (qinq, [68, mtu + 14]),
            (dot1qInDot1q, [80, mtu + 18]),
        ] {
            for (i, length) in lengths.enumerated() {
                frames.append(builder.ip(from: c4, to: s4, udp(42_000 + UInt16(i)), frameLength: length))
            }
        }
        for datagram in fragmentedDatagrams(mtu: mtu) {
            frames += datagram.link.ipv4Fragments(datagram.packet, count: datagram.fragments)
        }
        frames += incompleteDatagram.link.ipv4Fragments(incompleteDatagram.packet, count: 3).dropLast()
        let bare = FrameBuilder(source: .local(27), destination: .local(28), minimumLength: 0)
        frames.append(bare.frame(etherType: 0x88B5, payload: []))  // 14 bytes: the local experimental EtherType
        frames.append(bare.frame(etherType: 0x88B5, payload: [1, 2, 3, 4, 5, 6]))
        frames.append(bare.arpRequest(senderIP: IPv4Address("10.9.0.1"), targetIP: IPv4Address("10.9.0.3")))
        let udp64 = FrameBuilder(source: .local(29), destination: .local(30)).ip(from: c4, to: s4, udp(43_000))
        frames.append(FrameBuilder.padded(udp64, to: udp64.count + 4))
        return frames
    }

    /// A datagram the mix sends as IPv4 fragments, with its link layer.
    package struct FragmentedDatagram: Sendable {
        package var link: FrameBuilder
        package var packet: IPv4Packet
        package var fragments: Int
        /// The frame a kernel that reassembles fragments hands over: the link
        /// layer of the first fragment and the whole datagram.
        package var reassembled: [UInt8] { link.ipv4(packet) }
    }

    /// The datagrams of `kernelInterfaceMix` sent as fragments, every fragment sent.
    package static func fragmentedDatagrams(mtu: Int = 9000) -> [FragmentedDatagram] {
        let link = FrameBuilder(source: .local(31), destination: .local(32))
        func datagram(_ id: UInt16, _ bytes: Int) -> IPv4Packet {
            IPv4Packet(
                source: IPv4Address("10.9.1.1"),
                destination: IPv4Address("10.9.1.2"),
                payload: .udp(UDPDatagram(sourcePort: 44_000 + id, destinationPort: 9)).withBodyCount(bytes - 28),
                identification: 0x5100 + id
            )
        }
        var tagged = link
        tagged.vlans = [300]
        return [
            FragmentedDatagram(link: link, packet: datagram(1, 4000), fragments: 4),
            FragmentedDatagram(link: link, packet: datagram(2, mtu * 3 / 2), fragments: 2),
            FragmentedDatagram(link: link, packet: datagram(3, 60), fragments: 3),
            FragmentedDatagram(link: tagged, packet: datagram(4, 3000), fragments: 2),
        ]
    }

    /// A datagram of which `kernelInterfaceMix` sends the first two of three fragments only.
    package static let incompleteDatagram = FragmentedDatagram(
        link: FrameBuilder(source: .local(33), destination: .local(34)),
        packet: IPv4Packet(
            source: IPv4Address("10.9.2.1"),
            destination: IPv4Address("10.9.2.2"),
            payload: .udp(UDPDatagram(sourcePort: 45_000, destinationPort: 9)).withBodyCount(2000),
            identification: 0x5200
        ),
        fragments: 3
    )

    /// Whether `frame` (Ethernet, VLAN tags skipped) is an IPv4 fragment: More
    /// Fragments set or a non-zero offset.
    package static func isIPv4Fragment(_ frame: [UInt8]) -> Bool {
        var offset = 12
        while offset + 2 <= frame.count,
            [EtherType.vlan, EtherType.qinq].contains(UInt16(frame[offset]) << 8 | UInt16(frame[offset + 1]))
        {
            offset += 4
        }
        guard offset + 2 + 20 <= frame.count, UInt16(frame[offset]) << 8 | UInt16(frame[offset + 1]) == EtherType.ipv4
        else { return false }
        let flags = UInt16(frame[offset + 8]) << 8 | UInt16(frame[offset + 9])
        return flags & 0x3FFF != 0
    }

    /// What a kernel that reassembles IPv4 fragments hands a packet socket
    /// (af_packet's fanout group with PACKET_FANOUT_FLAG_DEFRAG) for `frames`:
    /// every frame that is not a fragment; for each datagram whose fragments all
    /// arrived, one frame with the first fragment's link layer and IP header
    /// (total length grown, fragment field cleared, checksum redone) and the
    /// whole payload; nothing for a datagram that never completed.
    package static func reassemblingIPv4(_ frames: [[UInt8]]) -> (frames: [[UInt8]], datagrams: Int, incomplete: Int) {
        struct Piece {
            var frame: [UInt8]
            var network: Int
            var headerLength: Int
            var offset: Int
            var payload: [UInt8]
            var more: Bool
        }
        var out: [[UInt8]] = []
        var pieces: [[UInt8]: [Piece]] = [:]
        var order: [[UInt8]] = []
        for frame in frames {
            guard isIPv4Fragment(frame) else {
                out.append(frame)
                continue
            }
            var network = 14
            while [0x8100, 0x88A8].contains(UInt16(frame[network - 2]) << 8 | UInt16(frame[network - 1])) {
                network += 4
            }
            let headerLength = Int(frame[network] & 0x0F) * 4
            let total = Int(frame[network + 2]) << 8 | Int(frame[network + 3])
            let flags = Int(frame[network + 6]) << 8 | Int(frame[network + 7])
            // Addresses, identification and protocol name the datagram.
            let key =
                Array(frame[network + 12..<network + 20]) + Array(frame[network + 4..<network + 6]) + [
                    frame[network + 9]
                ]
            if pieces[key] == nil { order.append(key) }
            pieces[key, default: []].append(
                Piece(
                    frame: frame,
                    network: network,
                    headerLength: headerLength,
                    offset: (flags & 0x1FFF) * 8,
                    payload: Array(frame[network + headerLength..<network + total]),
                    more: flags & 0x2000 != 0
                )
            )
        }
        var datagrams = 0
        var incomplete = 0
        for key in order {
            let sorted = pieces[key]!.sorted { $0.offset < $1.offset }
            var payload: [UInt8] = []
            for piece in sorted where piece.offset == payload.count { payload += piece.payload }
            guard let head = sorted.first, head.offset == 0, let last = sorted.last, !last.more,
                last.offset + last.payload.count == payload.count
            else {
                incomplete += 1
                continue
            }
            var frame = Array(head.frame[0..<head.network + head.headerLength])
            let total = head.headerLength + payload.count
            frame[head.network + 2] = UInt8(total >> 8)
            frame[head.network + 3] = UInt8(total & 0xFF)
            frame[head.network + 6] = 0
            frame[head.network + 7] = 0
            frame[head.network + 10] = 0
            frame[head.network + 11] = 0
            let checksum = InternetChecksum.checksum(Array(frame[head.network...]))
            frame[head.network + 10] = UInt8(checksum >> 8)
            frame[head.network + 11] = UInt8(checksum & 0xFF)
            out.append(frame + payload)
            datagrams += 1
        }
        return (out, datagrams, incomplete)
    }
}
