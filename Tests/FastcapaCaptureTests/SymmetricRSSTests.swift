import CDPDK
import FastcapaCapture
import FastcapaTestSupport
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
