import PcapFormat

extension SyntheticCaptures {
    /// Hosts of `protocolMix`. MACs are `MACAddress.local` of a per-host index.
    package enum MixHosts {
        package static let gateway: IPAddress = "10.0.0.1"
        package static let ssh: IPAddress = "10.0.0.2"
        package static let syslog: IPAddress = "10.0.0.5"
        package static let dns4: IPAddress = "10.0.0.53"
        package static let web4: IPAddress = "192.168.1.10"
        package static let ntp: IPAddress = "192.168.1.123"
        package static let web6: IPAddress = "2001:db8::10"
        package static let dns6: IPAddress = "2001:db8::53"
        /// 10.0.0.100…109 and 192.168.1.100…109.
        package static let clients4: [IPAddress] = (100...109).flatMap {
            [IPAddress("10.0.0.\($0)"), IPAddress("192.168.1.\($0)")]
        }
        /// 2001:db8::100…105.
        package static let clients6: [IPAddress] = (0x100...0x105).map {
            IPAddress("2001:db8::\(String($0, radix: 16))")
        }
    }

    /// A realistic mix for filter and text-output tests: `count` records from
    /// conversations that overlap in time (up to four at once), times strictly
    /// increasing from `Times.june2024`, 20 µs to 3 ms apart.
    ///
    /// Conversations: TCP on 22 (SSH, IPv4), 80 and 8080 (HTTP), 443 (TLS)
    /// over IPv4 or IPv6, each a handshake (SYN, SYN-ACK, ACK), 1–3
    /// request/response rounds (SSH 2–5: banners, key exchange, then random
    /// "encrypted" bytes; responses up to 4 segments, some full 1514-byte
    /// frames) and a FIN/FIN/ACK close (1 in 10 ends with a RST); DNS A/AAAA query and reply;
    /// NTP client/server; ICMP and ICMPv6 echo request/reply; ARP who-has and
    /// reply; a 3,000-byte syslog datagram in 3 IPv4 fragments. About 1 in 5
    /// conversations is VLAN-tagged (100 or 200), 1 in 20 QinQ (1000/100).
    /// Frames are 60 to 1514 bytes: the TCP MSS shrinks for IPv6 and tags.
    ///
    /// The first eleven conversations are one of each kind, short ones first
    /// (the 2nd and 8th on VLAN 100, the 5th and 9th QinQ), so from 100 records
    /// every kind is present (80 sufficed for seeds 1–10); later kinds are
    /// random. The last conversations are cut off wherever `count` falls.
    /// BPF note: `tcp port 443` skips tagged frames; match them with
    /// `X or (vlan and (X or (vlan and X)))`.
    package static func protocolMix(count: Int = 500, seed: UInt64 = 1) -> [PcapRecord] {
        var rng = SeededGenerator(seed: seed)
        var mix = MixState()
        // Short conversations first, so even small mixes hold every kind.
        let fixed: [Conversation] = [
            .dns, .arp, .ping, .ping6, .ntp, .syslog, .tcp(22), .tcp(80), .tcp(443), .tcp(8080), .tcp6,
        ]
        var started = 0
        var active: [[[UInt8]]] = []
        var records: [PcapRecord] = []
        var micros = Times.june2024
        while records.count < count {
            while active.count < 4 {
                let kind = started < fixed.count ? fixed[started] : rng.pick(Conversation.weighted)
                var link: [VLANTag] =
                    rng.percent(20) ? [rng.percent(50) ? 100 : 200] : rng.percent(6) ? [1000, 100] : []
                if started == 1 || started == 7 {
                    link = [100]
                } else if started == 4 || started == 8 {
                    link = [1000, 100]
                }
                active.append(mix.frames(kind, vlans: link, rng: &rng))
                started += 1
            }
            let i = rng.int(0...active.count - 1)
            records.append(PcapRecord(micros: micros, data: active[i].removeFirst()))
            micros += UInt64(rng.int(20...3000))
            if active[i].isEmpty { active.remove(at: i) }
        }
        return records
    }

    enum Conversation: Equatable {
        case tcp(UInt16)
        case tcp6, dns, ntp, ping, ping6, arp, syslog
        static let weighted: [Conversation] = [
            .tcp(22), .tcp(80), .tcp(80), .tcp(443), .tcp(443), .tcp(443), .tcp(8080), .tcp6,
            .dns, .dns, .dns, .ntp, .ping, .ping6, .arp, .arp, .syslog,
        ]
    }

    struct MixState {
        var nextID: UInt16 = 1

        mutating func id() -> UInt16 {
            nextID &+= 1
            return nextID
        }

        static func mac(_ address: IPAddress) -> MACAddress {
            switch address {
            case .v4(let a): .local(UInt32(a.bytes[2]) << 8 | UInt32(a.bytes[3]))
            case .v6(let a): .local(0x0001_0000 | UInt32(a.bytes[14]) << 8 | UInt32(a.bytes[15]))
            }
        }

        /// Frames of one conversation, in order.
        mutating func frames(_ kind: Conversation, vlans: [VLANTag], rng: inout SeededGenerator) -> [[UInt8]] {
            let client4 = rng.pick(MixHosts.clients4)
            let client6 = rng.pick(MixHosts.clients6)
            switch kind {
            case .tcp(let port):
                let v6 = port != 22 && rng.percent(25)
                return tcp(
                    client: v6 ? client6 : client4,
                    server: port == 22 ? MixHosts.ssh : v6 ? MixHosts.web6 : MixHosts.web4,
                    port: port,
                    vlans: vlans,
                    rng: &rng
                )
            case .tcp6:
                return tcp(client: client6, server: MixHosts.web6, port: rng.pick([80, 443]), vlans: vlans, rng: &rng)
            case .dns:
                let v6 = rng.percent(30)
                let (client, server) = v6 ? (client6, MixHosts.dns6) : (client4, MixHosts.dns4)
                let name = rng.pick([
                    "example.com", "www.example.org", "mail.example.net", "api.example.com", "cdn.example.org",
                ])
                let type: UInt16 = v6 ? 28 : 1
                let address =
                    v6
                    ? IPv6Address("2001:db8:ffff::\(String(rng.int(1...0xFFFF), radix: 16))").bytes
                    : [93, 184, 216, UInt8(rng.int(1...254))]
                let txid = rng.uint16()
                let port = UInt16(rng.int(32_768...60_999))
                return udpExchange(
                    client,
                    server,
                    clientPort: port,
                    serverPort: 53,
                    vlans: vlans,
                    request: AppPayloads.dnsQuery(id: txid, name: name, type: type),
                    response: AppPayloads.dnsReply(id: txid, name: name, type: type, address: address)
                )
            case .ntp:
                let stamp = UInt64(3_926_332_800 + rng.int(0...86_400)) << 32 | UInt64(rng.uint32())
                return udpExchange(
                    client4,
                    MixHosts.ntp,
                    clientPort: 123,
                    serverPort: 123,
                    vlans: vlans,
                    request: AppPayloads.ntp(server: false, transmit: stamp),
                    response: AppPayloads.ntp(server: true, transmit: stamp + 0x0100_0000)
                )
            case .ping, .ping6:
                let (client, server) =
                    kind == .ping
                    ? (client4, rng.pick([MixHosts.gateway, MixHosts.web4, MixHosts.dns4]))
                    : (client6, rng.pick([MixHosts.web6, MixHosts.dns6]))
                let ident = rng.uint16()
                let out = FrameBuilder(source: Self.mac(client), destination: Self.mac(server), vlans: vlans)
                return (1...UInt16(rng.int(1...3))).flatMap { seq in
                    [
                        out.ip(
                            from: client,
                            to: server,
                            .echo(ICMPEcho(identifier: ident, sequence: seq)),
                            identification: id()
                        ),
                        out.reversed.ip(
                            from: server,
                            to: client,
                            .echo(ICMPEcho(isReply: true, identifier: ident, sequence: seq)),
                            identification: id()
                        ),
                    ]
                }
            case .arp:
                let client = rng.pick(MixHosts.clients4)
                let target =
                    client.description.hasPrefix("10.")
                    ? rng.pick([MixHosts.gateway, MixHosts.ssh, MixHosts.dns4])
                    : rng.pick([MixHosts.web4, MixHosts.ntp])
                guard case .v4(let c) = client, case .v4(let t) = target else { return [] }
                let out = FrameBuilder(source: Self.mac(client), destination: Self.mac(target), vlans: vlans)
                return [out.arpRequest(senderIP: c, targetIP: t), out.reversed.arpReply(senderIP: t, targetIP: c)]
            case .syslog:
                guard case .v4(let c) = client4, case .v4(let s) = MixHosts.syslog else { return [] }
                let payload = AppPayloads.syslog(length: 3_000, host: "host\(c.bytes[3])")
                let packet = IPv4Packet(
                    source: c,
                    destination: s,
                    payload: .udp(UDPDatagram(sourcePort: 514, destinationPort: 514, payload: payload)),
                    identification: id()
                )
                return FrameBuilder(source: Self.mac(client4), destination: Self.mac(MixHosts.syslog), vlans: vlans)
                    .ipv4Fragments(packet, count: 3)
            }
        }

        mutating func udpExchange(
            _ client: IPAddress,
            _ server: IPAddress,
            clientPort: UInt16,
            serverPort: UInt16,
            vlans: [VLANTag],
            request: [UInt8],
            response: [UInt8]
        ) -> [[UInt8]] {
            let out = FrameBuilder(source: Self.mac(client), destination: Self.mac(server), vlans: vlans)
            return [
                out.ip(
                    from: client,
                    to: server,
                    .udp(UDPDatagram(sourcePort: clientPort, destinationPort: serverPort, payload: request)),
                    identification: id(),
                    dontFragment: false
                ),
                out.reversed.ip(
                    from: server,
                    to: client,
                    .udp(UDPDatagram(sourcePort: serverPort, destinationPort: clientPort, payload: response)),
                    identification: id(),
                    dontFragment: false
                ),
            ]
        }

        mutating func tcp(
            client: IPAddress,
            server: IPAddress,
            port: UInt16,
            vlans: [VLANTag],
            rng: inout SeededGenerator
        ) -> [[UInt8]] {
            let out = FrameBuilder(source: Self.mac(client), destination: Self.mac(server), vlans: vlans)
            let clientPort = UInt16(rng.int(32_768...60_999))
            var (c, s) = (rng.uint32(), rng.uint32())  // next sequence numbers
            var frames: [[UInt8]] = []
            func send(_ toServer: Bool, _ flags: TCPFlags, _ payload: [UInt8] = [], options: [UInt8] = []) {
                let segment = TCPSegment(
                    sourcePort: toServer ? clientPort : port,
                    destinationPort: toServer ? port : clientPort,
                    sequence: toServer ? c : s,
                    acknowledgment: flags.contains(.ack) ? (toServer ? s : c) : 0,
                    flags: flags,
                    window: toServer ? 64_240 : 65_160,
                    options: options,
                    payload: payload
                )
                let ident = id()
                frames.append(
                    toServer
                        ? out.ip(from: client, to: server, .tcp(segment), identification: ident)
                        : out.reversed.ip(from: server, to: client, .tcp(segment), identification: ident)
                )
                let advance = UInt32(payload.count) + (flags.contains(.syn) || flags.contains(.fin) ? 1 : 0)
                if toServer { c &+= advance } else { s &+= advance }
            }
            // The MSS that makes the largest segment a 1514-byte frame, tags included.
            let mss = 1514 - out.headerLength - (client.isIPv6 ? 40 : 20) - 20
            send(true, .syn, options: TCPSegment.mss(UInt16(mss)))
            send(false, [.syn, .ack], options: TCPSegment.mss(UInt16(mss)))
            send(true, .ack)
            for round in 0..<(port == 22 ? rng.int(2...5) : rng.int(1...3)) {
                let (request, response) = exchange(
                    port: port,
                    round: round,
                    host: server.description,
                    mss: mss,
                    rng: &rng
                )
                send(true, [.psh, .ack], request)
                var rest = response[...]
                while !rest.isEmpty {
                    let chunk = rest.prefix(mss)
                    rest = rest.dropFirst(chunk.count)
                    send(false, rest.isEmpty ? [.psh, .ack] : .ack, Array(chunk))
                }
                send(true, .ack)
            }
            if rng.percent(10) {
                send(false, [.rst, .ack])
            } else {
                send(true, [.fin, .ack])
                send(false, [.fin, .ack])
                send(true, .ack)
            }
            return frames
        }

        /// One request and its response for `port`; responses span 1 to 4 segments.
        func exchange(
            port: UInt16,
            round: Int,
            host: String,
            mss: Int,
            rng: inout SeededGenerator
        ) -> ([UInt8], [UInt8]) {
            let size = rng.percent(40) ? mss * rng.int(1...4) - rng.int(0...200) : rng.int(40...1400)
            switch port {
            case 80, 8080:
                let response = AppPayloads.httpResponse(bodyLength: max(0, size - 90))
                return (AppPayloads.httpRequest(path: "/page/\(rng.int(1...999))", host: host), response)
            case 443:
                // One TLS record per segment, so each decodes on its own.
                let records = stride(from: 0, to: size, by: mss).flatMap { start in
                    AppPayloads.tlsRecord(rng.bytes(max(1, min(mss, size - start) - 5)))
                }
                return (AppPayloads.tlsRecord(rng.bytes(rng.int(60...600))), records)
            default:
                // Banners, key exchange, then encrypted traffic (random bytes).
                switch round {
                case 0: return (AppPayloads.SSH.banner(server: false), AppPayloads.SSH.banner(server: true))
                case 1:
                    return (
                        AppPayloads.SSH.kexInit(cookie: rng.bytes(16)), AppPayloads.SSH.kexInit(cookie: rng.bytes(16))
                    )
                case 2:
                    return (
                        AppPayloads.SSH.ecdhInit(publicKey: rng.bytes(32)),
                        AppPayloads.SSH.ecdhReplyAndNewKeys(
                            modulus: rng.bytes(256),
                            publicKey: rng.bytes(32),
                            signature: rng.bytes(256)
                        )
                    )
                case 3: return (AppPayloads.SSH.newKeys + rng.bytes(rng.int(36...300)), rng.bytes(min(size, 4 * mss)))
                default: return (rng.bytes(rng.int(36...300)), rng.bytes(min(size, 4 * mss)))
                }
            }
        }
    }
}
