import CDPDK
import FastcapaCapture
import FastcapaTestSupport
import Foundation
import Testing

/// The symmetric RSS key, hashed as a NIC hashes (DPDK's `rte_softrss`): both
/// directions of a flow get one hash, hence one queue; DPDK's usual key does
/// not do that. And which drivers a flow cutoff with several queues refuses.
@Suite struct SymmetricRSSTests {
    /// The key most NICs ship with (Microsoft's RSS verification key; ixgbe's default).
    static let usualKey: [UInt8] = [
        0x6D, 0x5A, 0x56, 0xDA, 0x25, 0x5B, 0x0E, 0xC2, 0x41, 0x67, 0x25, 0x3D, 0x43, 0xA3, 0x8F, 0xB0,
        0xD0, 0xCA, 0x2B, 0xCB, 0xAE, 0x7B, 0x30, 0xB4, 0x77, 0xCB, 0x2D, 0xA3, 0x80, 0x30, 0xF2, 0x0C,
        0x6A, 0x42, 0xB7, 0x3B, 0xBE, 0xAC, 0x01, 0xFA,
    ]

    /// One direction of a flow: addresses as 32-bit words (one for IPv4, four for IPv6), and ports.
    struct Endpoints {
        var source: [UInt32]
        var destination: [UInt32]
        var sourcePort: UInt16
        var destinationPort: UInt16

        var reversed: Endpoints {
            Endpoints(
                source: destination,
                destination: source,
                sourcePort: destinationPort,
                destinationPort: sourcePort
            )
        }

        /// The Toeplitz hash with `key`: over the addresses, and the ports too with `ports`.
        func hash(_ key: [UInt8], ports: Bool) -> UInt32 {
            var tuple = source + destination
            if ports { tuple.append(UInt32(sourcePort) << 16 | UInt32(destinationPort)) }
            return CDPDK_rte_softrss(tuple, UInt32(tuple.count), key)
        }

        static func random(ipv6: Bool, _ generator: inout SeededGenerator) -> Endpoints {
            let words = ipv6 ? 4 : 1
            return Endpoints(
                source: (0..<words).map { _ in generator.uint32() },
                destination: (0..<words).map { _ in generator.uint32() },
                sourcePort: generator.uint16(),
                destinationPort: generator.uint16()
            )
        }
    }

    static func ipv4(_ address: String) -> [UInt32] {
        [address.split(separator: ".").reduce(0) { $0 << 8 | UInt32($1)! }]
    }

    /// A full IPv6 address (eight groups, `::` expanded by the caller) as four words.
    static func ipv6(_ groups: [UInt16]) -> [UInt32] {
        stride(from: 0, to: 8, by: 2).map { UInt32(groups[$0]) << 16 | UInt32(groups[$0 + 1]) }
    }

    /// Microsoft's published RSS verification values: the tuple is laid out as a NIC lays it out.
    @Test func hashesAsANICDoes() {
        let cases: [(Endpoints, addresses: UInt32, withPorts: UInt32)] = [
            (
                Endpoints(
                    source: Self.ipv4("66.9.149.187"),
                    destination: Self.ipv4("161.142.100.80"),
                    sourcePort: 2794,
                    destinationPort: 1766
                ), 0x323E_8FC2, 0x51CC_C178
            ),
            (
                Endpoints(
                    source: Self.ipv4("199.92.111.2"),
                    destination: Self.ipv4("65.69.140.83"),
                    sourcePort: 14230,
                    destinationPort: 4739
                ), 0xD718_262A, 0xC626_B0EA
            ),
            (
                Endpoints(
                    source: Self.ipv4("24.19.198.95"),
                    destination: Self.ipv4("12.22.207.184"),
                    sourcePort: 12898,
                    destinationPort: 38024
                ), 0xD2D0_A5DE, 0x5C2B_394A
            ),
            (
                Endpoints(
                    source: Self.ipv6([0x3FFE, 0x2501, 0x200, 0x1FFF, 0, 0, 0, 7]),
                    destination: Self.ipv6([0x3FFE, 0x2501, 0x200, 3, 0, 0, 0, 1]),
                    sourcePort: 2794,
                    destinationPort: 1766
                ), 0x2CC1_8CD5, 0x4020_7D3D
            ),
        ]
        for (endpoints, addresses, withPorts) in cases {
            #expect(endpoints.hash(Self.usualKey, ports: false) == addresses)
            #expect(endpoints.hash(Self.usualKey, ports: true) == withPorts)
        }
    }

    /// Both directions hash alike with the symmetric key, at DPDK's usual
    /// length and at i40e's and ice's 52 bytes, over addresses alone and with ports.
    @Test(arguments: [40, 52]) func bothDirectionsHashAlike(keyLength: Int) {
        let key = SymmetricRSS.key(length: keyLength)
        var generator = SeededGenerator(seed: 0x5253_5327)
        for ipv6 in [false, true] {
            for _ in 0..<2_000 {
                let flow = Endpoints.random(ipv6: ipv6, &generator)
                for ports in [false, true] {
                    #expect(flow.hash(key, ports: ports) == flow.reversed.hash(key, ports: ports))
                }
            }
        }
    }

    /// The usual key hashes the two directions apart: without the symmetric
    /// key, a flow's replies would mostly reach another queue.
    @Test func theUsualKeyHashesDirectionsApart() {
        var generator = SeededGenerator(seed: 0x5253_5328)
        for ipv6 in [false, true] {
            var alike = 0
            for _ in 0..<2_000 {
                let flow = Endpoints.random(ipv6: ipv6, &generator)
                if flow.hash(Self.usualKey, ports: true) == flow.reversed.hash(Self.usualKey, ports: true) {
                    alike += 1
                }
            }
            #expect(alike < 10, "IPv\(ipv6 ? 6 : 4): \(alike) of 2000 flows hash alike both ways")
        }
    }

    /// Symmetric is not enough (a key of zeros is symmetric too): flows still
    /// spread evenly over the queues, as a NIC picks them (the hash's low 7 bits
    /// index a 128-entry table that deals the queues out in turn).
    @Test(arguments: [2, 4, 8]) func flowsSpreadOverQueues(queues: Int) {
        let key = SymmetricRSS.key(length: SymmetricRSS.defaultKeyLength)
        var generator = SeededGenerator(seed: 0x5253_5329)
        let flows = 1_000 * queues
        for ipv6 in [false, true] {
            var perQueue = [Int](repeating: 0, count: queues)
            for _ in 0..<flows {
                let hash = Endpoints.random(ipv6: ipv6, &generator).hash(key, ports: true)
                perQueue[Int(hash & 127) % queues] += 1
            }
            #expect(perQueue.allSatisfy { $0 > 850 && $0 < 1_150 }, "IPv\(ipv6 ? 6 : 4) per queue: \(perQueue)")
        }
    }

    /// What devices are given is the same key, long enough for any device.
    @Test func theDeviceKeyIsTheKey() {
        let length = Int(UInt8.max)
        let device = Array(UnsafeBufferPointer(start: SymmetricRSS.deviceKey, count: length))
        #expect(device == SymmetricRSS.key(length: length))
        #expect(SymmetricRSS.key(length: 4) == [0x6D, 0x5A, 0x6D, 0x5A])
    }

    /// The key read back from a started port: net_null keeps a key (its own
    /// until one is given) and reports it, so it shows both answers. A port
    /// that reports another key is stopped. The port is the test EAL's
    /// `--vdev=net_null_rss0` (`FilterDifferential`).
    @Test func aStartedPortMustReportTheKey() throws {
        let pool = try FilterDifferential.shared().pool
        var id: UInt16 = 0
        try #require(rte_eth_dev_get_port_by_name("net_null_rss0", &id) == 0)
        defer {
            _ = rte_eth_dev_stop(id)
            _ = rte_eth_dev_close(id)
        }
        var conf = rte_eth_conf()
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS
        conf.rx_adv_conf.rss_conf.rss_hf = Port.rssHashFunctions(try Port.inspect(id), rxQueues: 2)
        try #require(rte_eth_dev_configure(id, 2, 0, &conf) == 0)
        for queue in 0..<UInt16(2) { try #require(rte_eth_rx_queue_setup(id, queue, 64, 0, nil, pool) == 0) }
        try #require(rte_eth_dev_start(id) == 0)

        let length = SymmetricRSS.defaultKeyLength
        #expect(throws: CaptureError.self) { try Port.checkKey(id, driver: "net_null", length: length) }
        try #require(rte_eth_dev_start(id) == 0)
        var update = rte_eth_rss_conf()
        update.rss_key = SymmetricRSS.deviceKey
        update.rss_key_len = UInt8(length)
        try #require(rte_eth_dev_rss_hash_update(id, &update) == 0)
        #expect(throws: Never.self) { try Port.checkKey(id, driver: "net_null", length: length) }
    }

    static func plan(
        _ driver: String,
        queues: Int = 4,
        hashFunctions: UInt64 = 1,
        keySize: UInt8 = 0
    )
        -> Result<SymmetricRSS.Plan, CaptureError>
    {
        Result { () throws(CaptureError) in
            try SymmetricRSS.plan(
                port: 3,
                driver: driver,
                rxQueues: queues,
                hashFunctions: hashFunctions,
                keySize: keySize
            )
        }
    }

    @Test func devicesThatSpreadByRSSTakeTheKey() throws {
        #expect(try Self.plan("net_ixgbe").get() == .key(length: 40))
        #expect(try Self.plan("net_i40e", keySize: 52).get() == .key(length: 52))
        #expect(try Self.plan("net_mlx5", keySize: 40).get() == .key(length: 40))
        #expect(
            try Self.plan("net_i40e", keySize: 52).get().description(port: 3)
                == "flow cutoff: symmetric RSS key on port 3 (52 bytes)"
        )
    }

    @Test func oneQueueNeedsNothing() throws {
        for driver in ["net_af_packet", "net_pcap", "net_ring", "net_ixgbe"] {
            #expect(try Self.plan(driver, queues: 1, hashFunctions: 0).get() == .oneQueue)
        }
    }

    @Test func netNullMakesNoFlows() throws {
        #expect(try Self.plan("net_null", hashFunctions: 0).get() == .noFlows)
    }

    /// The kernel's fanout, one queue per capture source, and devices that do
    /// not spread by RSS over IP are refused, with the reason and the fix.
    @Test func otherSpreadingIsRefused() {
        let refusals: [(String, [String])] = [
            ("net_af_packet", ["PACKET_FANOUT_FLAG_ROLLOVER", "qpairs=1 and -q 1"]),
            ("net_pcap", ["rx_pcap=", "mergecap", "-q 1"]),
            ("net_ring", ["not by RSS over IP", "-q 1"]),
        ]
        for (driver, words) in refusals {
            guard case .failure(let error) = Self.plan(driver, hashFunctions: 0) else {
                Issue.record("\(driver) with 4 queues is not refused")
                continue
            }
            let text = "\(error)"
            #expect(text.contains("port 3 (\(driver)) has 4 receive queues"), "\(text)")
            #expect(text.contains("no flow cutoff"), "\(text)")
            for word in words { #expect(text.contains(word), "\(driver): \(text)") }
        }
    }
}

/// The kernel's fanout as DPDK 22.11's af_packet driver sets it up for several
/// queues (PACKET_FANOUT_HASH with PACKET_FANOUT_FLAG_DEFRAG and
/// PACKET_FANOUT_FLAG_ROLLOVER), on a veth pair: why a flow cutoff refuses it.
/// Its hash keeps both directions of a UDP flow together, but it hashes ESP by
/// each direction's SPI, a GRE tunnel by the packet inside, and it moves a flow
/// to another socket when the flow's socket fills.
@Suite(.serialized, .tags(.root), .needsRoot) struct PacketFanoutTests {
    static let sockets = 4

    /// A veth pair in this namespace: frames sent into `sender` arrive at `capture`. Deleted on release.
    final class VethPair {
        let capture: String
        let sender: String

        init() throws {
            let suffix = UInt32.random(in: 0...99_999)
            capture = "fcrssA\(suffix)"
            sender = "fcrssB\(suffix)"
            try Self.run(["ip", "link", "add", capture, "type", "veth", "peer", "name", sender])
            for link in [capture, sender] {
                // No neighbour discovery of its own on the wire.
                try Self.run(["sysctl", "-q", "-w", "net.ipv6.conf.\(link).disable_ipv6=1"])
                try Self.run(["ip", "link", "set", link, "up"])
            }
        }

        deinit { try? Self.run(["ip", "link", "del", capture]) }

        static func run(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw FanoutError("\(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
            }
        }
    }

    struct FanoutError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// `struct sockaddr_ll` for interface `index` (family AF_PACKET, protocol ETH_P_ALL).
    static func linkAddress(_ index: UInt32) -> [UInt8] {
        var address = [UInt8](repeating: 0, count: 20)
        address.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
            bytes.storeBytes(of: UInt16(3).bigEndian, toByteOffset: 2, as: UInt16.self)  // ETH_P_ALL
            bytes.storeBytes(of: Int32(index), toByteOffset: 4, as: Int32.self)
        }
        address[11] = 6  // sll_halen
        return address
    }

    /// A packet socket bound to `interface` for every protocol.
    static func packetSocket(_ interface: String) throws -> Int32 {
        let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(UInt16(3).bigEndian))
        guard fd >= 0 else { throw FanoutError("socket(AF_PACKET): errno \(errno)") }
        let address = linkAddress(if_nametoindex(interface))
        let status = address.withUnsafeBytes {
            bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        guard status == 0 else { throw FanoutError("bind to \(interface): errno \(errno)") }
        return fd
    }

    /// `sockets` packet sockets on `interface` in one fanout group, as DPDK 22.11's
    /// af_packet driver joins its queues' sockets, each with `receiveBuffer` bytes.
    static func fanoutGroup(_ interface: String, receiveBuffer: Int32) throws -> [Int32] {
        let group = Int32(getpid() & 0xFFFF) ^ Int32(if_nametoindex(interface) & 0xFFFF)
        // PACKET_FANOUT_HASH (0) | PACKET_FANOUT_FLAG_DEFRAG (0x8000) | PACKET_FANOUT_FLAG_ROLLOVER (0x1000).
        var argument = group | (0x8000 | 0x1000) << 16
        var buffer = receiveBuffer
        return try (0..<sockets).map { _ in
            let fd = try packetSocket(interface)
            // SOL_PACKET (263), PACKET_FANOUT (18); SO_RCVBUFFORCE: root may exceed rmem_max.
            guard setsockopt(fd, 263, 18, &argument, 4) == 0,
                setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, 4) == 0
            else { throw FanoutError("fanout socket options: errno \(errno)") }
            return fd
        }
    }

    /// Sends `frames` into `interface`, then reads every socket dry: the flow of each
    /// frame that came back (by the sender's MAC), and the sockets it reached.
    static func exchange(
        _ frames: [[UInt8]],
        pair: VethPair,
        receiveBuffer: Int32 = 16 << 20
    ) throws -> [FlowKey: Set<Int>] {
        let group = try fanoutGroup(pair.capture, receiveBuffer: receiveBuffer)
        defer { for fd in group { close(fd) } }
        let sender = try packetSocket(pair.sender)
        defer { close(sender) }
        let address = linkAddress(if_nametoindex(pair.sender))
        for frame in frames {
            let sent = address.withUnsafeBytes { to in
                frame.withUnsafeBytes {
                    sendto(
                        sender,
                        $0.baseAddress,
                        $0.count,
                        0,
                        to.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                        socklen_t(to.count)
                    )
                }
            }
            guard sent == frame.count else { throw FanoutError("sendto: errno \(errno)") }
        }
        usleep(200_000)
        let senders = [FrameBuilder().source.bytes, FrameBuilder().destination.bytes]
        var reached: [FlowKey: Set<Int>] = [:]
        var buffer = [UInt8](repeating: 0, count: 65_536)
        for (index, fd) in group.enumerated() {
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                guard count > 0 else { break }
                guard senders.contains(Array(buffer[6..<12])) else { continue }
                let key = buffer.withUnsafeBytes { FlowKey.parse(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                if let key { reached[key, default: []].insert(index) }
            }
        }
        return reached
    }

    /// Both directions of `count` UDP flows (IPv4 or IPv6), two packets each way.
    static func udpConversations(_ count: Int, ipv6: Bool, _ generator: inout SeededGenerator) -> [[UInt8]] {
        (0..<count).flatMap { _ in
            let (a, b): (IPAddress, IPAddress) =
                ipv6
                ? (.v6(IPv6Address(bytes: generator.bytes(16))), .v6(IPv6Address(bytes: generator.bytes(16))))
                : (.v4(IPv4Address(generator.uint32())), .v4(IPv4Address(generator.uint32())))
            let (portA, portB) = (generator.uint16(), generator.uint16())
            let forward = FrameBuilder().ip(
                from: a,
                to: b,
                .udp(UDPDatagram(sourcePort: portA, destinationPort: portB))
            )
            let reply = FrameBuilder().reversed.ip(
                from: b,
                to: a,
                .udp(UDPDatagram(sourcePort: portB, destinationPort: portA))
            )
            return [forward, reply, forward, reply]
        }
    }

    @Test func bothDirectionsOfUDPReachOneSocket() throws {
        let pair = try VethPair()
        var generator = SeededGenerator(seed: 0x4641_4E31)
        let frames =
            Self.udpConversations(100, ipv6: false, &generator) + Self.udpConversations(100, ipv6: true, &generator)
        let reached = try Self.exchange(frames, pair: pair)
        #expect(reached.count == 200, "\(reached.count) of 200 flows came back")
        #expect(
            reached.values.allSatisfy { $0.count == 1 },
            "flows on several sockets: \(reached.filter { $0.value.count > 1 }.count)"
        )
        #expect(Set(reached.values.flatMap { $0 }).count == Self.sockets, "the flows did not spread over every socket")
    }

    /// ESP: each direction has its own SPI, which the kernel hashes as if it were the ports.
    @Test func espDirectionsReachDifferentSockets() throws {
        let pair = try VethPair()
        var generator = SeededGenerator(seed: 0x4641_4E32)
        let frames = (0..<100).flatMap { _ in
            let (a, b) = (IPv4Address(generator.uint32()), IPv4Address(generator.uint32()))
            let forward = FrameBuilder().ip(from: .v4(a), to: .v4(b), .raw(protocol: 50, bytes: generator.bytes(24)))
            let reply = FrameBuilder().reversed.ip(
                from: .v4(b),
                to: .v4(a),
                .raw(protocol: 50, bytes: generator.bytes(24))
            )
            return [forward, reply]
        }
        let reached = try Self.exchange(frames, pair: pair)
        #expect(reached.count == 100)
        let split = reached.values.filter { $0.count > 1 }.count
        #expect(split > 25, "\(split) of 100 ESP flows reached two sockets")
    }

    /// GRE: one tunnel between two hosts is one flow to the probe, but the kernel hashes the packets inside.
    @Test func aTunnelReachesSeveralSockets() throws {
        let pair = try VethPair()
        var generator = SeededGenerator(seed: 0x4641_4E33)
        let (a, b) = (IPv4Address(10, 0, 0, 1), IPv4Address(10, 0, 0, 2))
        let frames = (0..<64).map { _ in
            let inner = IPv4Packet(
                source: IPv4Address(generator.uint32()),
                destination: IPv4Address(generator.uint32()),
                payload: .udp(UDPDatagram(sourcePort: generator.uint16(), destinationPort: generator.uint16()))
            )
            return FrameBuilder().ip(
                from: .v4(a),
                to: .v4(b),
                .raw(protocol: 47, bytes: [0, 0, 0x08, 0x00] + inner.bytes())
            )
        }
        let reached = try Self.exchange(frames, pair: pair)
        #expect(reached.count == 1)
        #expect((reached.values.first?.count ?? 0) > 1, "the tunnel reached sockets \(reached.values.first ?? [])")
    }

    /// ROLLOVER: when a flow's socket fills (nobody reads it here), the kernel
    /// hands the flow's next frames to another socket.
    @Test func rolloverMovesAFlowWhenItsSocketFills() throws {
        let pair = try VethPair()
        var generator = SeededGenerator(seed: 0x4641_4E34)
        let conversation = Self.udpConversations(1, ipv6: false, &generator)
        let frames = (0..<100).flatMap { _ in conversation }
        let reached = try Self.exchange(frames, pair: pair, receiveBuffer: 16_384)
        #expect(reached.count == 1)
        #expect((reached.values.first?.count ?? 0) > 1, "the flow stayed on sockets \(reached.values.first ?? [])")
    }
}
