import PcapFormat

/// Frames that make a capture filter's edge cases, for comparing engines with
/// libpcap: runts of every length up to past the transport header, 802.1Q,
/// 802.1ad, 0x9100 and triple tags, IPv6 extension-header chains, frames whose
/// headers or loads straddle the 2,048-byte first segment and the 2,176-byte
/// later ones, multicast and broadcast destinations, 10/8 addresses, and
/// truncated records (captured length below the original), with the edge cases
/// and a protocol mix of `SyntheticCaptures`. Deterministic.
package enum FilterCorpus {
    /// Every record, at most 65,535 captured bytes each (what net_pcap delivers whole).
    package static func records(mixCount: Int = 600, seed: UInt64 = 21) -> [PcapRecord] {
        var frames: [[UInt8]] = []
        let c4: IPAddress = "10.1.2.3"
        let s4: IPAddress = "192.168.1.9"
        let c6: IPAddress = "2001:db8::1"
        let s6: IPAddress = "ff02::1:3"
        let tcp = IPPayload.tcp(
            TCPSegment(sourcePort: 40_000, destinationPort: 443, sequence: 1, flags: [.syn], payload: [])
        )
        let udp = IPPayload.udp(UDPDatagram(sourcePort: 5353, destinationPort: 53, payload: Array("query".utf8)))
        let echo = IPPayload.echo(ICMPEcho(identifier: 7, sequence: 1))
        let broadcast = FrameBuilder(destination: MACAddress(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF))
        let multicast = FrameBuilder(destination: MACAddress(0x01, 0x00, 0x5E, 0x00, 0x00, 0xFB))
        let almostBroadcast = FrameBuilder(destination: MACAddress(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE))
        let tags: [[VLANTag]] = [
            [], [100], [300, 100], [VLANTag(id: 7, tpid: 0x9100)], [VLANTag(id: 5, tpid: 0x88A8)], [1, 2, 3],
            [VLANTag(id: 0, priority: 5)],
        ]
        // Whole frames: every link layer with every network layer.
        var whole: [[UInt8]] = []
        for vlans in tags {
            for builder in [FrameBuilder(vlans: vlans), broadcast.tagged(vlans), multicast.tagged(vlans)] {
                for payload in [tcp, udp, echo] {
                    whole.append(builder.ip(from: c4, to: s4, payload))
                    whole.append(builder.ip(from: s4, to: c4, payload))
                    whole.append(builder.ip(from: c6, to: s6, payload))
                }
                whole.append(builder.arpRequest(senderIP: IPv4Address("10.0.0.1"), targetIP: IPv4Address("10.0.0.2")))
                for chain in ipv6ExtensionChains {
                    whole.append(builder.frame(etherType: EtherType.ipv6, payload: ipv6(chain)))
                }
                whole.append(builder.frame(etherType: 0x88CC, payload: FrameBuilder.raw(count: 46, seed: 3)))
                whole.append(builder.frame(etherType: 0x05DC, payload: FrameBuilder.raw(count: 46, seed: 4)))
            }
            whole.append(almostBroadcast.tagged(vlans).ip(from: c4, to: s4, udp))
        }
        frames += whole
        // Runts: every prefix of a few of them, up to past their transport header.
        for frame in whole.enumerated().filter({ $0.offset % 11 == 0 }).map(\.element) {
            for length in 0..<min(frame.count, 90) { frames.append(Array(frame.prefix(length))) }
        }
        // Chains: lengths around the segment boundaries (2,048, then 2,176 each), markers across them.
        for length in [2_047, 2_048, 2_049, 2_050, 2_051, 4_223, 4_224, 4_225, 4_226, 6_400, 6_401, 9_014, 65_535] {
            for builder in [FrameBuilder(), FrameBuilder(vlans: [300, 100]), broadcast] {
                var frame = builder.ip(from: c4, to: s4, udp, frameLength: length)
                for boundary in [2_046, 4_222, 6_398] where boundary + 4 <= frame.count {
                    frame.replaceSubrange(boundary..<boundary + 4, with: [0xDE, 0xAD, 0xBE, 0xEF])
                }
                frames.append(frame)
                frames.append(builder.ip(from: c6, to: s6, udp, frameLength: length))
            }
        }
        var records = frames.enumerated().map {
            PcapRecord(micros: SyntheticCaptures.Times.june2024 + UInt64($0.offset), data: $0.element)
        }
        // Truncated captures: long frames cut by snap lengths real captures use.
        for (index, frame) in frames.enumerated() where frame.count >= 600 && index % 3 == 0 {
            for snap in [54, 68, 96, 512] {
                records.append(
                    .truncated(frame, to: snap, micros: SyntheticCaptures.Times.june2024 + UInt64(index) * 10 + 1)
                )
            }
        }
        records += SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: mixCount, seed: seed)
        return records.filter { $0.data.count <= 65_535 }
    }

    /// IPv6 packets (after the Ethernet header) with extension headers before
    /// their transport: hop-by-hop, routing, fragment (first and later),
    /// destination options, in the orders RFC 8200 allows and some it does not.
    static var ipv6ExtensionChains: [[(next: UInt8, bytes: [UInt8])]] {
        let hopByHop: [UInt8] = [0, 0, 5, 2, 0, 0, 1, 0]  // router alert, padding
        let routing: [UInt8] = [0, 2, 0, 1] + [UInt8](repeating: 0, count: 4) + [UInt8](repeating: 0x20, count: 16)
        let firstFragment: [UInt8] = [0, 0, 0, 1, 0, 0, 0x12, 0x34]
        let laterFragment: [UInt8] = [0, 0, 0x05, 0x01, 0, 0, 0x12, 0x34]
        let destination: [UInt8] = [0, 0, 1, 4, 0, 0, 0, 0]
        let tcp: [UInt8] = [0x9C, 0x40, 0x01, 0xBB, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xFF, 0xFF, 0, 0, 0, 0]
        let udp: [UInt8] = [0x14, 0xE9, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4]
        let icmp6: [UInt8] = [128, 0, 0, 0, 0, 7, 0, 1]
        var chains: [[(next: UInt8, bytes: [UInt8])]] = []
        for (transportNumber, transport) in [(UInt8(6), tcp), (17, udp), (58, icmp6), (59, [])] {
            chains.append([(0, hopByHop), (transportNumber, transport)])
            chains.append([(0, hopByHop), (43, routing), (44, firstFragment), (transportNumber, transport)])
            chains.append([(44, laterFragment), (transportNumber, transport)])
            chains.append([(60, destination), (43, routing), (transportNumber, transport)])
            chains.append([(0, hopByHop), (60, destination), (44, firstFragment), (transportNumber, transport)])
        }
        return chains
    }

    /// An IPv6 packet of headers `chain`: each entry's `next` is the protocol
    /// number of its own header, written into the previous header.
    static func ipv6(_ chain: [(next: UInt8, bytes: [UInt8])]) -> [UInt8] {
        var body: [UInt8] = []
        for (index, header) in chain.enumerated() {
            var bytes = header.bytes
            if index + 1 < chain.count, !bytes.isEmpty { bytes[0] = chain[index + 1].next }
            body += bytes
        }
        var out: [UInt8] = [0x60, 0, 0, 0, UInt8(body.count >> 8), UInt8(body.count & 0xFF), chain[0].next, 64]
        out += [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
        out += [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [2]
        return out + body
    }
}

extension FrameBuilder {
    /// The same builder with `vlans` as its tags.
    fileprivate func tagged(_ vlans: [VLANTag]) -> FrameBuilder {
        var other = self
        other.vlans = vlans
        return other
    }
}
