import Foundation
import PcapFormat

/// A record with a stable name, so a test can pick one edge case out.
package struct NamedRecord: Equatable, Sendable {
    package var name: String
    package var record: PcapRecord
}

/// Ready-made captures built in code. Every corpus is deterministic: the same
/// arguments give the same bytes on every run.
package enum SyntheticCaptures {
    /// Capture times (epoch microseconds) the corpora use. A classic pcap holds
    /// unsigned 32-bit seconds, so it cannot hold times before 1970 nor after
    /// `endOfRange` (2106-02-07 06:28:15.999999 UTC).
    package enum Times {
        package static let epoch: UInt64 = 0
        package static let oneMicrosecond: UInt64 = 1
        /// 2024-06-01 12:00:00 UTC.
        package static let june2024: UInt64 = 1_717_243_200_000_000
        /// 2038-01-19 03:14:07 UTC, the last second a signed 32-bit time_t holds.
        package static let lastSigned32: UInt64 = (1 << 31 - 1) * 1_000_000
        /// 2038-01-19 03:14:08 UTC (2^31 s): negative if read as signed.
        package static let firstPast2038: UInt64 = (1 << 31) * 1_000_000
        /// 2038-01-19 03:14:13 UTC (2^31 + 5 s).
        package static let after2038: UInt64 = ((1 << 31) + 5) * 1_000_000
        /// 2106-02-07 06:28:15.999999 UTC, the last time a classic pcap holds.
        package static let endOfRange: UInt64 = (1 << 32 - 1) * 1_000_000 + 999_999
    }

    /// The edge cases, in this order, with strictly increasing times:
    /// - `empty` (0 bytes) at the epoch, `one-byte` at 1 µs;
    /// - from `Times.june2024`, 1 ms apart: `runt-13`, ARP request/reply (60),
    ///   `udp-64`, ICMP and ICMPv6 echo request/reply, `ipv6-tcp-syn`,
    ///   `vlan-tcp` (VLAN 100), `qinq-udp` (0x88A8 300 / 0x8100 100), `ipv4-options`
    ///   (IHL 6, Router Alert), TCP with URG/PSH, RST and FIN, then frames of
    ///   exactly 1514, 2048, 2049, 9000 (IPv6), 9014, 16384 (IPv6) and 65535 bytes,
    ///   `truncated-1514` (96 bytes captured of 1514), and `fragment-1`…`fragment-4`
    ///   (one 4,000-byte UDP datagram, IP id 0x4242);
    /// - `time-last-signed-32` (2^31 − 1 s), `time-2^31` (2^31 s), `time-after-2038`
    ///   (2^31 + 5 s), `time-end-of-range-minus-1us`, `time-end-of-range` (2^32 − 1 s + 999,999 µs).
    package static var edgeCaseEntries: [NamedRecord] {
        let c4: IPAddress = "10.0.0.1"
        let s4: IPAddress = "10.0.0.2"
        let c6: IPAddress = "2001:db8::1"
        let s6: IPAddress = "2001:db8::2"
        let out = FrameBuilder(source: .local(1), destination: .local(2))
        let back = out.reversed
        // Each TCP entry gets its own client port, so tshark sees no retransmissions.
        func tcp(
            _ flags: TCPFlags,
            port: UInt16,
            seq: UInt32 = 1000,
            ack: UInt32 = 0,
            payload: [UInt8] = [],
            options: [UInt8] = []
        ) -> IPPayload {
            .tcp(
                TCPSegment(
                    sourcePort: port,
                    destinationPort: 443,
                    sequence: seq,
                    acknowledgment: ack,
                    flags: flags,
                    options: options,
                    payload: payload
                )
            )
        }
        func udp(_ port: UInt16 = 9, _ payload: [UInt8] = []) -> IPPayload {
            .udp(UDPDatagram(sourcePort: 40_001, destinationPort: port, payload: payload))
        }
        func data(_ port: UInt16) -> IPPayload { tcp([.ack, .psh], port: port, seq: 1001, ack: 5001) }

        var frames: [(String, [UInt8])] = [
            ("runt-13", FrameBuilder.raw(count: 13, seed: 13)),
            ("arp-request", out.arpRequest(senderIP: IPv4Address("10.0.0.1"), targetIP: IPv4Address("10.0.0.2"))),
            ("arp-reply", back.arpReply(senderIP: IPv4Address("10.0.0.2"), targetIP: IPv4Address("10.0.0.1"))),
            ("udp-64", out.ip(from: c4, to: s4, udp(), frameLength: 64)),
            ("icmp-echo-request", out.ip(from: c4, to: s4, .echo(ICMPEcho(identifier: 0x1F, sequence: 1)))),
            (
                "icmp-echo-reply",
                back.ip(from: s4, to: c4, .echo(ICMPEcho(isReply: true, identifier: 0x1F, sequence: 1)))
            ),
            ("icmpv6-echo-request", out.ip(from: c6, to: s6, .echo(ICMPEcho(identifier: 0x2F, sequence: 1)))),
            (
                "icmpv6-echo-reply",
                back.ip(from: s6, to: c6, .echo(ICMPEcho(isReply: true, identifier: 0x2F, sequence: 1)))
            ),
            (
                "ipv6-tcp-syn",
                out.ip(from: c6, to: s6, tcp(.syn, port: 40_010, options: TCPSegment.mss(1440)), flowLabel: 0xABCDE)
            ),
            ("vlan-tcp", FrameBuilder(vlans: [100]).ip(from: c4, to: s4, data(40_011), frameLength: 200)),
            (
                "qinq-udp",
                FrameBuilder(vlans: [300, 100]).ip(
                    from: c4,
                    to: s4,
                    udp(53, AppPayloads.dnsQuery(id: 7, name: "example.com"))
                )
            ),
            (
                "ipv4-options",
                out.ipv4(
                    IPv4Packet(
                        source: IPv4Address("10.0.0.1"),
                        destination: IPv4Address("10.0.0.2"),
                        payload: udp(),
                        identification: 77,
                        ttl: 1,
                        options: IPv4Packet.routerAlert
                    )
                )
            ),
            (
                "tcp-urg-psh",
                out.ip(
                    from: c4,
                    to: s4,
                    {
                        guard
                            case .tcp(var s) = tcp(
                                [.urg, .psh, .ack],
                                port: 40_012,
                                seq: 1001,
                                ack: 5001,
                                payload: Array("!urgent".utf8)
                            )
                        else { fatalError() }
                        s.urgentPointer = 1
                        return .tcp(s)
                    }()
                )
            ),
            (
                "tcp-rst",
                back.ip(
                    from: s4,
                    to: c4,
                    .tcp(TCPSegment(sourcePort: 443, destinationPort: 40_013, sequence: 5001, flags: .rst, window: 0))
                )
            ),
            ("tcp-fin", out.ip(from: c4, to: s4, tcp([.fin, .ack], port: 40_014, seq: 1001, ack: 5001))),
            ("tcp-1514", out.ip(from: c4, to: s4, data(40_015), frameLength: 1514)),
            ("udp-2048", out.ip(from: c4, to: s4, udp(), frameLength: 2048, identification: 2048)),
            ("tcp-2049", out.ip(from: c4, to: s4, data(40_017), frameLength: 2049)),
            ("ipv6-udp-9000", out.ip(from: c6, to: s6, udp(), frameLength: 9000)),
            ("tcp-9014", out.ip(from: c4, to: s4, data(40_019), frameLength: 9014)),
            ("ipv6-tcp-16384", out.ip(from: c6, to: s6, data(40_020), frameLength: 16_384)),
            ("udp-65535", out.ip(from: c4, to: s4, udp(), frameLength: 65_535, identification: 65_535)),
        ]
        let datagram = IPv4Packet(
            source: IPv4Address("10.0.0.1"),
            destination: IPv4Address("10.0.0.2"),
            payload: udp(9, (0..<3_992).map { UInt8(truncatingIfNeeded: $0) }),
            identification: 0x4242
        )
        frames += out.ipv4Fragments(datagram, count: 4).enumerated().map { ("fragment-\($0.offset + 1)", $0.element) }

        var entries = [
            NamedRecord(name: "empty", record: PcapRecord(micros: Times.epoch, data: [])),
            NamedRecord(name: "one-byte", record: PcapRecord(micros: Times.oneMicrosecond, data: [0x5A])),
        ]
        for (i, (name, frame)) in frames.enumerated() {
            let micros = Times.june2024 + UInt64(i) * 1000
            entries.append(NamedRecord(name: name, record: PcapRecord(micros: micros, data: frame)))
            if name == "tcp-1514" {
                // Same shape as tcp-1514, cut by a 96-byte snap length; next to it so the two are easy to compare.
                let full = out.ip(from: c4, to: s4, data(40_016), frameLength: 1514)
                entries.append(
                    NamedRecord(name: "truncated-1514", record: .truncated(full, to: 96, micros: micros + 500))
                )
            }
        }
        let late: [(String, UInt64)] = [
            ("time-last-signed-32", Times.lastSigned32), ("time-2^31", Times.firstPast2038),
            ("time-after-2038", Times.after2038),
            ("time-end-of-range-minus-1us", Times.endOfRange - 1), ("time-end-of-range", Times.endOfRange),
        ]
        for (i, (name, micros)) in late.enumerated() {
            let frame = out.ip(
                from: c4,
                to: s4,
                tcp(.ack, port: 40_030 + UInt16(i), seq: 1001, ack: 5001, payload: Array(name.utf8))
            )
            entries.append(NamedRecord(name: name, record: PcapRecord(micros: micros, data: frame)))
        }
        return entries
    }

    /// `edgeCaseEntries` without names.
    package static var edgeCases: [PcapRecord] { edgeCaseEntries.map(\.record) }

    /// A classic pcap file: microsecond times, Ethernet, snap length 262,144.
    package static func write(_ records: [PcapRecord], to path: String) throws {
        let file = PcapFile(linkType: 1, snapLength: 262_144, records: records)
        try Data(file.bytes()).write(to: URL(fileURLWithPath: path))
    }
}
