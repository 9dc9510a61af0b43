import PcapFormat

/// A plain model of flow cutoff, written to be read rather than to be fast:
/// what flow a frame belongs to, and which packets a cutoff keeps. Tests hold
/// the probe's flow code to it record for record.
///
/// What a flow is: the VLAN IDs of the frame's tags (outermost first, however
/// many), its IP version, its IP protocol and the unordered pair of its two
/// endpoints, so both directions of a conversation are one flow. An endpoint
/// is an address and a port; ports count for TCP (6), UDP (17) and SCTP (132)
/// only, and are 0 for other protocols and for every fragment.
///
/// A frame is untracked (nil) when it is not IPv4 or IPv6 after its tags, or
/// when its captured bytes end before what is needed: a tag and the EtherType
/// after it, the IPv4 header with its options (a header length below 20 is
/// malformed), the 40-byte IPv6 header, each IPv6 extension header, or, for an
/// unfragmented TCP, UDP or SCTP packet, the two ports.
package enum FlowReference {
    /// One side of a conversation.
    package struct Endpoint: Hashable, Sendable, CustomStringConvertible {
        /// 4 bytes for IPv4, 16 for IPv6.
        package var address: [UInt8]
        package var port: UInt16

        package var description: String {
            let text =
                address.count == 4
                ? address.map(String.init).joined(separator: ".")
                : address.map { String($0, radix: 16) }.joined(separator: ":")
            return "\(text) port \(port)"
        }
    }

    package struct Identity: Hashable, Sendable, CustomStringConvertible {
        /// Outermost first; every tag, however deep the stack.
        package var vlanIDs: [UInt16]
        /// 4 or 6.
        package var ipVersion: Int
        /// IPv4's Protocol, or the Next Header that ends IPv6's extension chain.
        package var ipProtocol: UInt8
        /// Unordered: a set, so A to B and B to A are equal. One element when
        /// both endpoints are the same.
        package var endpoints: Set<Endpoint>

        package var description: String {
            let pair = endpoints.map(\.description).sorted().joined(separator: " <-> ")
            return "vlans \(vlanIDs) IPv\(ipVersion) protocol \(ipProtocol) \(pair)"
        }
    }

    /// The TPIDs that start a VLAN tag: 802.1Q, 802.1ad and the older QinQ.
    static let vlanTPIDs: Set<UInt16> = [0x8100, 0x88A8, 0x9100]

    /// IPv6 extension headers whose length byte counts 8-byte units past the first 8.
    static let eightByteExtensions: Set<UInt8> = [0, 43, 60]  // Hop-by-Hop, Routing, Destination Options
    static let authenticationHeader: UInt8 = 51  // length counts 4-byte units past the first 8
    static let fragmentHeader: UInt8 = 44  // always 8 bytes
    static let protocolsWithPorts: Set<UInt8> = [6, 17, 132]

    /// The flow of a frame's captured bytes, or nil when it is untracked.
    package static func identity(of frame: [UInt8]) -> Identity? {
        // Ethernet: destination MAC, source MAC, then an EtherType or a tag's TPID.
        var position = 12
        guard let firstType = uint16(frame, at: position) else { return nil }
        var etherType = firstType

        var vlanIDs: [UInt16] = []
        while vlanTPIDs.contains(etherType) {
            // A tag is the TPID, then 2 bytes of which the low 12 bits are the
            // VLAN ID; the EtherType (or the next TPID) follows.
            guard let tagControl = uint16(frame, at: position + 2) else { return nil }
            guard let nextType = uint16(frame, at: position + 4) else { return nil }
            vlanIDs.append(tagControl & 0x0FFF)
            position += 4
            etherType = nextType
        }
        let networkStart = position + 2

        switch etherType {
        case 0x0800:
            return ipv4Identity(frame, at: networkStart, vlanIDs: vlanIDs)
        case 0x86DD:
            return ipv6Identity(frame, at: networkStart, vlanIDs: vlanIDs)
        default:
            return nil
        }
    }

    static func ipv4Identity(_ frame: [UInt8], at start: Int, vlanIDs: [UInt16]) -> Identity? {
        guard frame.count >= start + 20 else { return nil }
        let version = frame[start] >> 4
        let headerLength = Int(frame[start] & 0x0F) * 4
        guard version == 4, headerLength >= 20, frame.count >= start + headerLength else { return nil }

        let flagsAndOffset = uint16(frame, at: start + 6)!
        let moreFragments = flagsAndOffset & 0x2000 != 0
        let fragmentOffset = flagsAndOffset & 0x1FFF
        let isFragment = moreFragments || fragmentOffset != 0

        let ipProtocol = frame[start + 9]
        let source = Array(frame[(start + 12)..<(start + 16)])
        let destination = Array(frame[(start + 16)..<(start + 20)])
        return withPorts(
            frame,
            transportStart: start + headerLength,
            isFragment: isFragment,
            base: (vlanIDs, 4, ipProtocol, source, destination)
        )
    }

    static func ipv6Identity(_ frame: [UInt8], at start: Int, vlanIDs: [UInt16]) -> Identity? {
        guard frame.count >= start + 40, frame[start] >> 4 == 6 else { return nil }
        let source = Array(frame[(start + 8)..<(start + 24)])
        let destination = Array(frame[(start + 24)..<(start + 40)])

        // Walk the extension headers; each must be captured whole.
        var nextHeader = frame[start + 6]
        var position = start + 40
        var isFragment = false
        walk: while true {
            if eightByteExtensions.contains(nextHeader) || nextHeader == authenticationHeader {
                guard frame.count >= position + 2 else { return nil }
                let lengthField = Int(frame[position + 1])
                let length =
                    nextHeader == authenticationHeader ? (lengthField + 2) * 4 : (lengthField + 1) * 8
                guard frame.count >= position + length else { return nil }
                nextHeader = frame[position]
                position += length
            } else if nextHeader == fragmentHeader {
                // The walk stops here: only the first fragment holds what follows.
                guard frame.count >= position + 8 else { return nil }
                nextHeader = frame[position]
                position += 8
                isFragment = true
                break walk
            } else {
                break walk
            }
        }
        return withPorts(
            frame,
            transportStart: position,
            isFragment: isFragment,
            base: (vlanIDs, 6, nextHeader, source, destination)
        )
    }

    static func withPorts(
        _ frame: [UInt8],
        transportStart: Int,
        isFragment: Bool,
        base: (vlanIDs: [UInt16], version: Int, ipProtocol: UInt8, source: [UInt8], destination: [UInt8])
    ) -> Identity? {
        var sourcePort: UInt16 = 0
        var destinationPort: UInt16 = 0
        if !isFragment && protocolsWithPorts.contains(base.ipProtocol) {
            guard let first = uint16(frame, at: transportStart), let second = uint16(frame, at: transportStart + 2)
            else { return nil }
            sourcePort = first
            destinationPort = second
        }
        return Identity(
            vlanIDs: base.vlanIDs,
            ipVersion: base.version,
            ipProtocol: base.ipProtocol,
            endpoints: [
                Endpoint(address: base.source, port: sourcePort),
                Endpoint(address: base.destination, port: destinationPort),
            ]
        )
    }

    /// The big-endian 16 bits at `offset`, or nil past the captured bytes.
    static func uint16(_ frame: [UInt8], at offset: Int) -> UInt16? {
        guard offset >= 0, offset + 2 <= frame.count else { return nil }
        return UInt16(frame[offset]) << 8 | UInt16(frame[offset + 1])
    }
}

extension FlowReference {
    package enum Decision: Hashable, Sendable {
        /// A tracked packet the cutoff lets through.
        case kept
        /// A tracked packet past the flow's packet or byte cutoff.
        case cut
        /// The first packet of a flow that found every slot taken: kept, not counted.
        case keptTableFull
        /// A frame that belongs to no flow: kept, not counted.
        case untracked
    }

    /// Which packets a flow cutoff keeps, for records in the order one queue
    /// receives them.
    ///
    /// - Counting: a flow's `packets` and `bytes` (original lengths) are its
    ///   totals *before* the current packet, and count every packet of it the
    ///   table holds, kept or cut. A packet is kept when `packets < packets
    ///   limit` (if set) and `bytes < bytes limit` (if set).
    /// - Timeout: a flow held in the table whose latest packet time is more
    ///   than `timeoutMicros` before the current packet's time (strictly:
    ///   `now - latest > timeoutMicros`; a gap of exactly the timeout continues
    ///   it) is forgotten, and the current packet starts it again from zero.
    ///   An earlier time than the latest continues the flow; the latest stays
    ///   the maximum time seen.
    /// - Capacity (nil: unlimited): the table holds at most that many flows; a
    ///   flow holds its slot until the slot is freed. Slots are freed only when
    ///   a packet of a flow not in the table finds every slot taken: then every
    ///   held flow that is expired at that packet's time (by the rule above) is
    ///   removed, all at once. If a slot is then free, the new flow takes it;
    ///   otherwise the packet is `keptTableFull` and nothing of it is counted
    ///   (its next packet tries again as a new flow). A removed flow's next
    ///   packet starts it from zero, even when that packet's time is within the
    ///   timeout of the removed flow's latest (possible only with earlier times).
    package struct Cutoff: Sendable {
        package var packets: Int?
        package var bytes: Int?
        package var timeoutMicros: UInt64
        package var capacity: Int?

        package init(packets: Int?, bytes: Int?, timeoutMicros: UInt64, capacity: Int?) {
            self.packets = packets
            self.bytes = bytes
            self.timeoutMicros = timeoutMicros
            self.capacity = capacity
        }

        /// A flow the table holds.
        struct FlowState {
            var packets: Int
            var bytes: Int
            var latestMicros: UInt64
        }

        /// Whether a flow last seen at `latest` is forgotten at `now`.
        func isExpired(_ flow: FlowState, at now: UInt64) -> Bool {
            now > flow.latestMicros && now - flow.latestMicros > timeoutMicros
        }

        func allows(_ flow: FlowState) -> Bool {
            if let limit = packets, flow.packets >= limit { return false }
            if let limit = bytes, flow.bytes >= limit { return false }
            return true
        }

        package func decide(_ records: [(frame: [UInt8], originalLength: Int, micros: UInt64)]) -> [Decision] {
            var table: [Identity: FlowState] = [:]
            var decisions: [Decision] = []
            for record in records {
                let now = record.micros
                guard let identity = FlowReference.identity(of: record.frame) else {
                    decisions.append(.untracked)
                    continue
                }
                var flow: FlowState
                if let held = table[identity] {
                    flow = isExpired(held, at: now) ? FlowState(packets: 0, bytes: 0, latestMicros: now) : held
                } else {
                    if let capacity, table.count >= capacity {
                        table = table.filter { !isExpired($0.value, at: now) }
                        if table.count >= capacity {
                            decisions.append(.keptTableFull)
                            continue
                        }
                    }
                    flow = FlowState(packets: 0, bytes: 0, latestMicros: now)
                }
                decisions.append(allows(flow) ? .kept : .cut)
                flow.packets += 1
                flow.bytes += record.originalLength
                flow.latestMicros = max(flow.latestMicros, now)
                table[identity] = flow
            }
            return decisions
        }

        package func decide(_ records: [PcapRecord]) -> [Decision] {
            decide(records.map { (frame: $0.data, originalLength: Int($0.originalLength), micros: $0.micros) })
        }
    }
}
