import Foundation
import PcapFormat

extension SyntheticCaptures {
    /// Load-test traffic: `count` flows with distinct 5-tuples, each of
    /// `packetsPerFlow` frames of exactly `frameLength` bytes (at least 60),
    /// alternating client→server and server→client. Flows are interleaved
    /// round-robin (packet 0 of every flow, then packet 1, …), 1 µs apart from
    /// `Times.june2024`. Every fourth flow is UDP (a DNS query/reply or NTP
    /// packet padded with filler; frames under ~100 bytes cut them short, so
    /// tshark calls those malformed), the rest TCP (22, 80, 443, 8080) with
    /// consistent sequence numbers and no handshake. Clients are 10.x.y.z
    /// (unique per flow, so up to 2^24 − 2 flows), servers 192.168.1.1…64.
    package static func flows(count: Int, packetsPerFlow: Int = 2, frameLength: Int = 128) -> [PcapRecord] {
        var records: [PcapRecord] = []
        records.reserveCapacity(count * packetsPerFlow)
        forEachFlowRecord(count: count, packetsPerFlow: packetsPerFlow, frameLength: frameLength) { records.append($0) }
        return records
    }

    /// `flows(...)` written straight to a classic pcap file, without holding
    /// every record in memory (for captures of millions of frames).
    package static func writeFlows(count: Int, packetsPerFlow: Int = 2, frameLength: Int = 128, to path: String) throws
    {
        guard
            FileManager.default.createFile(
                atPath: path,
                contents: Data(PcapFile.header(linkType: 1, snapLength: 262_144))
            ),
            let file = FileHandle(forWritingAtPath: path)
        else { throw PcapError(description: "cannot create \(path)") }
        defer { try? file.close() }
        try file.seekToEnd()
        var chunk: [UInt8] = []
        try forEachFlowRecord(count: count, packetsPerFlow: packetsPerFlow, frameLength: frameLength) { record in
            chunk += PcapFile.recordBytes(record)
            if chunk.count >= 1 << 20 {
                try file.write(contentsOf: chunk)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        try file.write(contentsOf: chunk)
    }

    /// Calls `body` with each record of `flows(...)`, in order. Packets 0 and 1
    /// of a flow are built in full; later ones copy them and rewrite the fields
    /// that change (TCP seq/ack, DNS id) and the checksum, which is several
    /// times faster in debug builds and gives the same bytes.
    package static func forEachFlowRecord(
        count: Int,
        packetsPerFlow: Int,
        frameLength: Int,
        _ body: (PcapRecord) throws -> Void
    ) rethrows {
        precondition(count >= 0 && count < 1 << 24 - 2 && packetsPerFlow >= 0 && frameLength >= 60)
        var templates: [[UInt8]] = []
        templates.reserveCapacity(count * min(2, packetsPerFlow))
        var micros = Times.june2024
        for packet in 0..<packetsPerFlow {
            for flow in 0..<count {
                var frame: [UInt8]
                if packet < 2 {
                    frame = flowFrame(flow: flow, packet: packet, frameLength: frameLength)
                    templates.append(frame)
                } else {
                    frame = templates[packet % 2 * count + flow]
                    patchFlowFrame(&frame, flow: flow, packet: packet)
                }
                try body(PcapRecord(micros: micros, data: frame))
                micros += 1
            }
        }
    }

    struct FlowShape {
        var client, server: IPv4Address
        var clientPort, serverPort: UInt16
        var udp: Bool

        init(_ flow: Int) {
            client = IPv4Address(0x0A00_0001 + UInt32(flow))
            server = IPv4Address(0xC0A8_0101 + UInt32(flow % 64))
            clientPort = UInt16(1024 + flow % 64_000)
            udp = flow % 4 == 3
            serverPort = udp ? [53, 123][flow / 4 % 2] : [22, 80, 443, 8080][flow % 4 == 0 ? flow / 4 % 4 : flow % 4]
        }
    }

    /// Sequence and acknowledgment numbers of a TCP flow's `packet`: each side
    /// has sent its earlier packets full of `body` bytes.
    static func flowNumbers(packet: Int, body: Int) -> (sequence: UInt32, acknowledgment: UInt32) {
        let toServer = packet % 2 == 0
        let mine = UInt32(truncatingIfNeeded: (packet + (toServer ? 1 : 0)) / 2 * body)
        let theirs = UInt32(truncatingIfNeeded: (packet + (toServer ? 0 : 1)) / 2 * body)
        let (own, peer): (UInt32, UInt32) = toServer ? (1, 100_001) : (100_001, 1)
        return (own &+ mine, peer &+ theirs)
    }

    static func dnsID(flow: Int, packet: Int) -> UInt16 { UInt16(truncatingIfNeeded: flow &* 8 &+ packet / 2) }

    /// Frame `packet` of flow `flow`, built with the ordinary builders.
    package static func flowFrame(flow: Int, packet: Int, frameLength: Int) -> [UInt8] {
        let shape = FlowShape(flow)
        let toServer = packet % 2 == 0
        let link = FrameBuilder(
            source: .local(0x0100_0000 + UInt32(flow)),
            destination: .local(0xC0A8_0101 + UInt32(flow % 64))
        )
        let (sport, dport) = toServer ? (shape.clientPort, shape.serverPort) : (shape.serverPort, shape.clientPort)
        let payload: IPPayload
        if shape.udp {
            let (id, name) = (dnsID(flow: flow, packet: packet), "flow\(flow).example.com")
            let app =
                shape.serverPort != 53
                ? AppPayloads.ntp(server: !toServer, transmit: UInt64(flow) << 32)
                : toServer
                    ? AppPayloads.dnsQuery(id: id, name: name)
                    : AppPayloads.dnsReply(id: id, name: name, address: shape.server.bytes)
            payload = .udp(UDPDatagram(sourcePort: sport, destinationPort: dport, payload: app))
        } else {
            let (sequence, acknowledgment) = flowNumbers(packet: packet, body: frameLength - 54)
            payload = .tcp(
                TCPSegment(
                    sourcePort: sport,
                    destinationPort: dport,
                    sequence: sequence,
                    acknowledgment: acknowledgment,
                    flags: [.ack, .psh]
                )
            )
        }
        return toServer
            ? link.ip(from: .v4(shape.client), to: .v4(shape.server), payload, frameLength: frameLength)
            : link.reversed.ip(from: .v4(shape.server), to: .v4(shape.client), payload, frameLength: frameLength)
    }

    /// Turns flow `flow`'s frame `packet % 2` into its frame `packet`: untagged
    /// IPv4 without options, so the transport header starts at byte 34.
    static func patchFlowFrame(_ frame: inout [UInt8], flow: Int, packet: Int) {
        let l4 = 34
        let checksumAt: Int
        if FlowShape(flow).udp {
            checksumAt = l4 + 6
            if frame[l4 + 2] == 0 && frame[l4 + 3] == 53 || frame[l4] == 0 && frame[l4 + 1] == 53 {
                put16(&frame, l4 + 8, dnsID(flow: flow, packet: packet))
            }
        } else {
            checksumAt = l4 + 16
            let (sequence, acknowledgment) = flowNumbers(packet: packet, body: frame.count - 54)
            put16(&frame, l4 + 4, UInt16(sequence >> 16))
            put16(&frame, l4 + 6, UInt16(sequence & 0xFFFF))
            put16(&frame, l4 + 8, UInt16(acknowledgment >> 16))
            put16(&frame, l4 + 10, UInt16(acknowledgment & 0xFFFF))
        }
        put16(&frame, checksumAt, 0)
        let length = frame.count - l4
        // Pseudo-header: addresses (bytes 26..<34), protocol, transport length.
        let pseudo = InternetChecksum.sum(frame, from: 26, to: 34) + UInt32(frame[23]) + UInt32(length)
        let sum = ~UInt16(InternetChecksum.sum(frame, from: l4, to: frame.count, initial: pseudo))
        put16(&frame, checksumAt, sum == 0 && frame[23] == 17 ? 0xFFFF : sum)
    }
}
