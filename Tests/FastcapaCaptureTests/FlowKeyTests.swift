import FastcapaCapture
import FastcapaTestSupport
import PcapFormat
import Testing

@Suite struct FlowKeyTests {
    static let client: IPAddress = "10.0.0.1"
    static let server: IPAddress = "192.168.1.10"
    static let client6 = IPv6Address("2001:db8::1")
    static let server6 = IPv6Address("2001:db8::2")
    static let link = FrameBuilder(minimumLength: 0)
    /// The first 12 bytes of an IPv4-mapped IPv6 address.
    static let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]

    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

    static func key(_ frame: [UInt8]) -> FlowKey? { frame.withUnsafeBytes { FlowKey.parse($0) } }

    static func isFragment(_ frame: [UInt8]) -> Bool? { frame.withUnsafeBytes { FlowKey.parseFrame($0)?.isFragment } }

    static func tcp(_ source: UInt16, _ destination: UInt16) -> IPPayload {
        .tcp(TCPSegment(sourcePort: source, destinationPort: destination, flags: .syn))
    }

    static func udp(_ source: UInt16, _ destination: UInt16) -> IPPayload {
        .udp(UDPDatagram(sourcePort: source, destinationPort: destination, payload: [1, 2, 3, 4]))
    }

    /// A bare 20-byte TCP header: the ports, then zeros (data offset 5).
    static func tcpHeader(_ source: UInt16, _ destination: UInt16) -> [UInt8] {
        Self.be16(source) + Self.be16(destination) + [UInt8](repeating: 0, count: 8) + [0x50, 0x02]
            + [UInt8](repeating: 0, count: 6)
    }

    /// An IPv6 extension header of `kind` with its length byte `length`, its bytes
    /// sized by the kind's rule; its Next Header is filled in by `chained`.
    static func extensionHeader(_ kind: UInt8, length: UInt8 = 0) -> (kind: UInt8, bytes: [UInt8]) {
        switch kind {
        case 44: return (kind, [0, 0, 0x00, 0x01, 0, 0, 0x12, 0x34])  // offset 0, More Fragments
        case 51: return (kind, [0, length] + [UInt8](repeating: 0xAA, count: (Int(length) + 2) * 4 - 2))
        default: return (kind, [0, length] + [UInt8](repeating: 0xEE, count: (Int(length) + 1) * 8 - 2))
        }
    }

    /// An IPv6 frame whose payload is `headers`, chained, then `transport` of `last`.
    static func ipv6(
        _ headers: [(kind: UInt8, bytes: [UInt8])],
        _ last: UInt8,
        _ transport: [UInt8],
        from source: IPv6Address = client6,
        to destination: IPv6Address = server6,
        link: FrameBuilder = link
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        for (index, header) in headers.enumerated() {
            var header = header.bytes
            header[0] = index + 1 < headers.count ? headers[index + 1].kind : last
            bytes += header
        }
        let payload = IPPayload.raw(protocol: headers.first?.kind ?? last, bytes: bytes + transport)
        return link.ipv6(IPv6Packet(source: source, destination: destination, payload: payload))
    }

    // MARK: The key

    @Test func keyIsSixtyFourBytesWithNoPadding() {
        #expect(MemoryLayout<FlowKey>.size == FlowKey.byteCount)
        #expect(MemoryLayout<FlowKey>.stride == 64)
        #expect(MemoryLayout<FlowKey>.alignment == 8)
        let offsets = [
            MemoryLayout<FlowKey>.offset(of: \.lowerAddress), MemoryLayout<FlowKey>.offset(of: \.upperAddress),
            MemoryLayout<FlowKey>.offset(of: \.vlanDigest), MemoryLayout<FlowKey>.offset(of: \.vlanIDs),
            MemoryLayout<FlowKey>.offset(of: \.lowerPort), MemoryLayout<FlowKey>.offset(of: \.upperPort),
            MemoryLayout<FlowKey>.offset(of: \.vlanCount), MemoryLayout<FlowKey>.offset(of: \.ipVersion),
            MemoryLayout<FlowKey>.offset(of: \.ipProtocol),
        ]
        #expect(offsets == [0, 16, 32, 40, 56, 58, 60, 62, 63])
    }

    @Test func bothDirectionsAreOneFlow() throws {
        let payloads: [(IPPayload, IPPayload, UInt8)] = [
            (Self.tcp(40_000, 80), Self.tcp(80, 40_000), 6),
            (Self.udp(5353, 53), Self.udp(53, 5353), 17),
            (
                .raw(protocol: 132, bytes: Self.be16(2905) + Self.be16(38_412)),
                .raw(protocol: 132, bytes: Self.be16(38_412) + Self.be16(2905)), 132
            ),
        ]
        for (there, back, proto) in payloads {
            for (a, b) in [(Self.client, Self.server), (IPAddress.v6(Self.client6), IPAddress.v6(Self.server6))] {
                let out = try #require(Self.key(FrameBuilder().ip(from: a, to: b, there)))
                let reply = try #require(Self.key(FrameBuilder().reversed.ip(from: b, to: a, back)))
                #expect(out == reply)
                #expect(out.hashValue == reply.hashValue)
                #expect(Set([out, reply]).count == 1)
                #expect(out.ipProtocol == proto)
                #expect(out.ipVersion == (a.isIPv6 ? 6 : 4))
                #expect(out.vlanCount == 0)
            }
        }
    }

    @Test func theLowerEndpointComesFirstAndIPv4IsMapped() throws {
        let key = try #require(Self.key(FrameBuilder().ip(from: Self.server, to: Self.client, Self.tcp(80, 40_000))))
        #expect(withUnsafeBytes(of: key.lowerAddress) { Array($0) } == Self.mapped + [10, 0, 0, 1])
        #expect(withUnsafeBytes(of: key.upperAddress) { Array($0) } == Self.mapped + [192, 168, 1, 10])
        #expect(key.lowerPort == 40_000 && key.upperPort == 80)

        // One address talking to itself: the ports decide, both ways.
        let loop = try #require(Self.key(FrameBuilder().ip(from: Self.client, to: Self.client, Self.udp(9000, 53))))
        let back = try #require(Self.key(FrameBuilder().ip(from: Self.client, to: Self.client, Self.udp(53, 9000))))
        #expect(loop == back)
        #expect(loop.lowerPort == 53 && loop.upperPort == 9000)

        let six = try #require(
            Self.key(
                FrameBuilder().ipv6(
                    IPv6Packet(source: Self.server6, destination: Self.client6, payload: Self.tcp(443, 50_000))
                )
            )
        )
        #expect(withUnsafeBytes(of: six.lowerAddress) { Array($0) } == Self.client6.bytes)
        #expect(six.lowerPort == 50_000)
    }

    @Test func portsAndProtocolsAndVersionsTellFlowsApart() throws {
        let base = try #require(Self.key(FrameBuilder().ip(from: Self.client, to: Self.server, Self.tcp(40_000, 80))))
        let others: [[UInt8]] = [
            FrameBuilder().ip(from: Self.client, to: Self.server, Self.tcp(40_001, 80)),
            FrameBuilder().ip(from: Self.client, to: Self.server, Self.tcp(40_000, 81)),
            FrameBuilder().ip(from: Self.client, to: Self.server, Self.udp(40_000, 80)),
            FrameBuilder().ip(from: Self.client, to: "192.168.1.11", Self.tcp(40_000, 80)),
            FrameBuilder().ipv6(
                IPv6Packet(
                    source: IPv6Address(bytes: Self.mapped + [10, 0, 0, 1]),
                    destination: IPv6Address(bytes: Self.mapped + [192, 168, 1, 10]),
                    payload: Self.tcp(40_000, 80)
                )
            ),
        ]
        for frame in others { #expect(try #require(Self.key(frame)) != base) }
    }

    // MARK: VLAN tags

    @Test(arguments: [UInt16(0x8100), 0x88A8, 0x9100])
    func eachTagProtocolIsATag(_ tpid: UInt16) throws {
        let tagged = FrameBuilder(vlans: [VLANTag(id: 300, tpid: tpid)])
        let key = try #require(Self.key(tagged.ip(from: Self.client, to: Self.server, Self.tcp(40_000, 80))))
        #expect(key.vlanCount == 1 && key.vlanID(0) == 300 && key.vlanDigest == 0)
        #expect(key.lowerPort == 40_000)
        #expect(key == Self.key(tagged.reversed.ip(from: Self.server, to: Self.client, Self.tcp(80, 40_000))))
        #expect(key != Self.key(FrameBuilder().ip(from: Self.client, to: Self.server, Self.tcp(40_000, 80))))
        // Priority and drop eligibility are not the ID.
        let marked = FrameBuilder(vlans: [VLANTag(id: 300, priority: 5, dropEligible: true, tpid: tpid)])
        #expect(key == Self.key(marked.ip(from: Self.client, to: Self.server, Self.tcp(40_000, 80))))
    }

    @Test func stackedTagsCountInOrder() throws {
        func key(_ vlans: [VLANTag]) throws -> FlowKey {
            try #require(Self.key(FrameBuilder(vlans: vlans).ip(from: Self.client, to: Self.server, Self.udp(1, 2))))
        }
        let qinq = try key([100, 200])
        #expect(qinq.vlanCount == 2 && qinq.vlanID(0) == 100 && qinq.vlanID(1) == 200 && qinq.vlanID(2) == 0)
        let three = try key([VLANTag(id: 100, tpid: 0x9100), VLANTag(id: 200, tpid: 0x88A8), 300])
        #expect(three.vlanCount == 3 && three.vlanID(2) == 300)
        #expect(qinq != (try key([200, 100])))
        #expect(qinq != (try key([100])))
        #expect(qinq != (try key([100, 200, 0])))
        #expect(qinq != three)
        #expect(try key([0]) != (try key([])))
    }

    @Test func tagsPastTheStoredOnesFoldIntoTheDigest() throws {
        func key(_ ids: [UInt16]) throws -> FlowKey {
            let vlans = ids.map { VLANTag(id: $0, tpid: 0x8100) }
            return try #require(
                Self.key(FrameBuilder(vlans: vlans).ip(from: Self.client, to: Self.server, Self.tcp(1, 2)))
            )
        }
        let eight = try key(Array(1...8))
        #expect(eight.vlanCount == 8 && eight.vlanDigest == 0 && eight.vlanID(7) == 8)
        let nine = try key(Array(1...9))
        #expect(nine.vlanCount == 9 && nine.vlanDigest != 0)
        #expect(nine != eight)
        let twelve = try key(Array(1...12))
        #expect(twelve.vlanCount == 12 && twelve != nine)
        #expect(twelve == (try key(Array(1...12))))
        #expect(twelve != (try key(Array(1...11) + [99])))
        #expect(twelve != (try key(Array(1...9) + [11, 10, 12])))
        let reply = FrameBuilder(vlans: (1...12).map { VLANTag(id: $0, tpid: 0x8100) }).reversed
        #expect(twelve == Self.key(reply.ip(from: Self.server, to: Self.client, Self.tcp(2, 1))))
    }

    // MARK: IPv4

    @Test func ipv4OptionsAreSkippedToThePorts() throws {
        let plain = try #require(Self.key(FrameBuilder().ip(from: Self.client, to: Self.server, Self.tcp(40_000, 80))))
        for options in [IPv4Packet.routerAlert, [UInt8](repeating: 1, count: 40), [7, 3, 4]] {
            guard case .v4(let s) = Self.client, case .v4(let d) = Self.server else { return }
            let packet = IPv4Packet(source: s, destination: d, payload: Self.tcp(40_000, 80), options: options)
            let frame = Self.link.ipv4(packet)
            #expect(Self.key(frame) == plain)
            #expect(Self.key(Array(frame.prefix(14 + packet.headerLength + 3))) == nil)
            #expect(Self.key(Array(frame.prefix(14 + packet.headerLength + 4))) == plain)
        }
    }

    @Test func ipv4HeaderThatIsNotOneIsUntracked() throws {
        let frame = Self.link.ip(from: Self.client, to: Self.server, Self.tcp(40_000, 80))
        #expect(Self.key(frame) != nil)
        for versionAndLength: UInt8 in [0x44, 0x40, 0x41, 0x60, 0x65, 0x55, 0x05, 0xF5] {
            var broken = frame
            broken[14] = versionAndLength
            #expect(Self.key(broken) == nil, "version/IHL byte \(versionAndLength)")
        }
        // An IHL longer than what was captured.
        var long = frame
        long[14] = 0x4F
        #expect(Self.key(Array(long.prefix(14 + 59))) == nil)
    }

    @Test func ipv4FragmentsShareOneFlowWithoutPorts() throws {
        guard case .v4(let s) = Self.client, case .v4(let d) = Self.server else { return }
        let datagram = IPv4Packet(
            source: s,
            destination: d,
            payload: .udp(
                UDPDatagram(sourcePort: 5000, destinationPort: 6000, payload: [UInt8](repeating: 7, count: 100))
            ),
            identification: 0x4242
        )
        let whole = try #require(Self.key(Self.link.ipv4(datagram)))
        #expect(Self.isFragment(Self.link.ipv4(datagram)) == false)
        let fragments = Self.link.ipv4Fragments(datagram, count: 3)
        let keys = try fragments.map { try #require(Self.key($0)) }
        #expect(Set(keys).count == 1)
        #expect(keys[0].lowerPort == 0 && keys[0].upperPort == 0 && keys[0].ipProtocol == 17)
        #expect(keys[0] != whole)
        #expect(fragments.allSatisfy { Self.isFragment($0) == true })

        var back = datagram
        (back.source, back.destination) = (d, s)
        #expect(Self.key(Self.link.ipv4Fragments(back, count: 2)[1]) == keys[0])

        // The first fragment needs no ports captured: its header is enough.
        #expect(Self.key(Array(fragments[0].prefix(14 + 20))) == keys[0])
        // Only the offset set, or only More Fragments: both are fragments.
        var onlyOffset = datagram
        onlyOffset.fragmentOffset = 8
        onlyOffset.payload = .raw(protocol: 17, bytes: [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(Self.key(Self.link.ipv4(onlyOffset)) == keys[0])
        var onlyMore = datagram
        onlyMore.moreFragments = true
        #expect(Self.key(Self.link.ipv4(onlyMore)) == keys[0])
        // Don't Fragment is not a fragment.
        var dontFragment = datagram
        dontFragment.dontFragment = true
        #expect(Self.key(Self.link.ipv4(dontFragment)) == whole)
    }

    // MARK: IPv6

    @Test(arguments: [UInt8(0), 43, 60, 51])
    func eachExtensionHeaderIsSkipped(_ kind: UInt8) throws {
        let plain = try #require(Self.key(Self.ipv6([], 6, Self.tcpHeader(50_000, 443))))
        for length: UInt8 in [0, 1, 4] {
            let frame = Self.ipv6([Self.extensionHeader(kind, length: length)], 6, Self.tcpHeader(50_000, 443))
            #expect(Self.key(frame) == plain, "length \(length)")
            #expect(Self.isFragment(frame) == false)
            let reply = Self.ipv6(
                [Self.extensionHeader(kind, length: length)],
                6,
                Self.tcpHeader(443, 50_000),
                from: Self.server6,
                to: Self.client6
            )
            #expect(Self.key(reply) == plain)
        }
    }

    @Test func chainsOfExtensionHeadersAreSkipped() throws {
        let plain = try #require(Self.key(Self.ipv6([], 17, Self.tcpHeader(5353, 53))))
        #expect(plain.ipProtocol == 17 && plain.lowerPort == 5353 && plain.upperPort == 53)
        let chains: [[UInt8]] = [
            [0, 60], [0, 43, 60], [0, 43, 51, 60], [60, 60, 60], [51, 51], [0, 0, 43, 43, 51, 60],
        ]
        for chain in chains {
            let headers = chain.enumerated().map { Self.extensionHeader($1, length: UInt8($0 % 3)) }
            #expect(Self.key(Self.ipv6(headers, 17, Self.tcpHeader(5353, 53))) == plain, "chain \(chain)")
        }
    }

    @Test func authenticationHeaderIsCountedInFourByteWords() throws {
        // AH with length 1 is (1 + 2) × 4 = 12 bytes; the 8-byte rule would make it 16.
        var header = Self.extensionHeader(51, length: 1)
        #expect(header.bytes.count == 12)
        let transport = Self.tcpHeader(1111, 2222) + Self.tcpHeader(3333, 4444)
        let key = try #require(Self.key(Self.ipv6([header], 6, transport)))
        #expect(key.lowerPort == 1111 && key.upperPort == 2222)
        // With the usual 96-bit ICV: length 4, 24 bytes.
        header = Self.extensionHeader(51, length: 4)
        #expect(header.bytes.count == 24)
        #expect(Self.key(Self.ipv6([header], 6, transport)) == key)
    }

    @Test func ipv6FragmentsTakeTheFragmentHeadersNextHeader() throws {
        let first = Self.ipv6([Self.extensionHeader(44)], 17, Self.tcpHeader(5000, 6000))
        let key = try #require(Self.key(first))
        #expect(key.ipProtocol == 17 && key.lowerPort == 0 && key.upperPort == 0 && key.ipVersion == 6)
        #expect(Self.isFragment(first) == true)
        // A later fragment carries no transport header: the same flow.
        #expect(Self.key(Self.ipv6([Self.extensionHeader(44)], 17, [9, 9, 9])) == key)
        #expect(Self.key(Self.ipv6([Self.extensionHeader(44)], 17, [], from: Self.server6, to: Self.client6)) == key)
        // After other headers, and with an extension header behind it that is not read.
        #expect(Self.key(Self.ipv6([Self.extensionHeader(0), Self.extensionHeader(44)], 17, [])) == key)
        let hidden = try #require(Self.key(Self.ipv6([Self.extensionHeader(44)], 60, [])))
        #expect(hidden.ipProtocol == 60)
        // The Fragment header itself must be captured whole.
        let frame = Self.ipv6([Self.extensionHeader(44)], 17, [])
        #expect(Self.key(Array(frame.dropLast())) == nil)
        #expect(Self.key(frame) == key)
    }

    @Test func ipv6WithAnotherVersionIsUntracked() {
        var frame = Self.ipv6([], 6, Self.tcpHeader(1, 2))
        #expect(Self.key(frame) != nil)
        for version: UInt8 in [0x40, 0x00, 0x70, 0xF0] {
            frame[14] = version
            #expect(Self.key(frame) == nil)
        }
    }

    // MARK: Protocols without ports

    @Test func otherProtocolsHaveNoPorts() throws {
        let cases: [(IPAddress, IPAddress, IPPayload, UInt8)] = [
            (Self.client, Self.server, .echo(ICMPEcho(identifier: 7, sequence: 1)), 1),
            (.v6(Self.client6), .v6(Self.server6), .echo(ICMPEcho(identifier: 7, sequence: 1)), 58),
            (Self.client, Self.server, .raw(protocol: 47, bytes: [0, 0, 0x08, 0x00, 1, 2, 3, 4]), 47),
            (Self.client, Self.server, .raw(protocol: 50, bytes: [0xAB, 0xCD, 0xEF, 0x01]), 50),
            (Self.client, Self.server, .raw(protocol: 89, bytes: []), 89),
        ]
        for (a, b, payload, proto) in cases {
            let key = try #require(Self.key(Self.link.ip(from: a, to: b, payload)))
            #expect(key.ipProtocol == proto && key.lowerPort == 0 && key.upperPort == 0)
            var reply = payload
            if case .echo(var echo) = payload {
                echo.isReply = true
                reply = .echo(echo)
            }
            #expect(Self.key(Self.link.ip(from: b, to: a, reply)) == key)
        }
    }

    // MARK: Truncation and frames that are not IP

    @Test func truncatedFramesAreUntrackedUntilThePortsAreCaptured() throws {
        let link = FrameBuilder(
            vlans: [VLANTag(id: 10, tpid: 0x88A8), 20, VLANTag(id: 30, tpid: 0x9100)],
            minimumLength: 0
        )
        let headers = [
            Self.extensionHeader(0, length: 1), Self.extensionHeader(43), Self.extensionHeader(51, length: 4),
            Self.extensionHeader(60),
        ]
        let frame = Self.ipv6(headers, 6, Self.tcpHeader(50_000, 443) + [1, 2, 3], link: link)
        let full = try #require(Self.key(frame))
        let portsEnd = link.headerLength + 40 + headers.map(\.bytes.count).reduce(0, +) + 4
        for length in 0...frame.count {
            let key = Self.key(Array(frame.prefix(length)))
            #expect(key == (length < portsEnd ? nil : full), "\(length) of \(frame.count) bytes")
        }

        let udp4 = FrameBuilder(vlans: [5], minimumLength: 0)
        guard case .v4(let s) = Self.client, case .v4(let d) = Self.server else { return }
        let frame4 = udp4.ipv4(
            IPv4Packet(source: s, destination: d, payload: Self.udp(1, 2), options: IPv4Packet.routerAlert)
        )
        let full4 = try #require(Self.key(frame4))
        for length in 0...frame4.count {
            #expect(Self.key(Array(frame4.prefix(length))) == (length < 18 + 24 + 4 ? nil : full4), "\(length) bytes")
        }
    }

    @Test func framesThatAreNotIPAreUntracked() {
        guard case .v4(let s) = Self.client, case .v4(let d) = Self.server else { return }
        #expect(Self.key(FrameBuilder().arpRequest(senderIP: s, targetIP: d)) == nil)
        #expect(Self.key(FrameBuilder(vlans: [100]).arpReply(senderIP: d, targetIP: s)) == nil)
        #expect(Self.key(FrameBuilder().frame(etherType: 0x88CC, payload: [UInt8](repeating: 0, count: 60))) == nil)
        // An IPv4 header under the IPv6 type and the other way round.
        let four = FrameBuilder().ip(from: Self.client, to: Self.server, Self.tcp(1, 2))
        #expect(Self.key(FrameBuilder().frame(etherType: EtherType.ipv6, payload: Array(four[14...]))) == nil)
        let six = FrameBuilder().ipv6(
            IPv6Packet(source: Self.client6, destination: Self.server6, payload: Self.tcp(1, 2))
        )
        #expect(Self.key(FrameBuilder().frame(etherType: EtherType.ipv4, payload: Array(six[14...]))) == nil)
    }

    @Test func runtsAreUntracked() {
        for count in 0..<14 {
            #expect(Self.key(FrameBuilder.raw(count: count, seed: UInt64(count))) == nil)
        }
        #expect(Self.key(Self.link.frame(etherType: EtherType.ipv4, payload: [])) == nil)
        #expect(Self.key(Self.link.frame(etherType: EtherType.ipv6, payload: [0x60])) == nil)
        // A tag with nothing after it, or cut inside.
        #expect(Self.key(Self.link.frame(etherType: EtherType.vlan, payload: [0, 1])) == nil)
        #expect(Self.key(Self.link.frame(etherType: EtherType.vlan, payload: [0, 1, 0x08, 0x00])) == nil)
    }

    @Test func everyIPFrameOfABuiltMixIsTracked() {
        for record in SyntheticCaptures.protocolMix(count: 300, seed: 7) {
            let isARP = [12, 16, 20].contains {
                record.data.count > $0 + 1 && record.data[$0] == 0x08 && record.data[$0 + 1] == 0x06
            }
            #expect((Self.key(record.data) == nil) == isARP)
        }
    }

    @Test(.sharedCorpus) func everyFrameOfTheSharedCapturesParses() throws {
        var tracked = 0
        for record in try SharedCorpus.records() where Self.key(record.data) != nil { tracked += 1 }
        #expect(tracked > 0)
    }
}
