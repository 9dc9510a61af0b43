import CDPDK

/// Both directions of a flow on one receive queue, which a flow cutoff needs:
/// each queue counts the flows it sees, so a flow spread over several queues is
/// counted apart on each, and more of it is kept than the limits allow.
///
/// A NIC spreads packets by RSS: the Toeplitz hash of (source, destination,
/// source port, destination port) picks the queue. The hash XORs, for each set
/// bit of that input, the 32 key bits that start at the bit's position. With a
/// key whose 16-bit pattern repeats, those 32 bits depend only on the position
/// modulo 16; swapping source and destination moves every bit by a multiple of
/// 16 (addresses by 32 or 128 bits, ports by 16), so both directions XOR the
/// same words and get the same hash, hence the same queue.
package enum SymmetricRSS {
    /// The repeated 16 bits.
    package static let pattern: (UInt8, UInt8) = (0x6D, 0x5A)

    /// The key length asked of a device that does not give its own (DPDK's usual 40 bytes).
    package static let defaultKeyLength = 40

    /// The symmetric key of `length` bytes.
    package static func key(length: Int) -> [UInt8] {
        (0..<length).map { $0 % 2 == 0 ? pattern.0 : pattern.1 }
    }

    /// The key as given to devices: `rte_eth_dev_configure` keeps the pointer,
    /// not the bytes, and drivers read them when the port starts (ixgbe, i40e)
    /// and again when they reset RSS (i40e), so they live as long as the
    /// process. As long as the longest key a device can take (`rss_key_len` is
    /// 8 bits); every length reads a prefix. Never written after it is made.
    nonisolated(unsafe) package static let deviceKey: UnsafeMutablePointer<UInt8> = {
        let bytes = key(length: Int(UInt8.max))
        let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
        storage.initialize(from: bytes, count: bytes.count)
        return storage
    }()

    /// How a port keeps each flow on one receive queue.
    package enum Plan: Equatable, Sendable {
        /// One receive queue: nothing is spread.
        case oneQueue
        /// RSS with the symmetric key of `length` bytes.
        case key(length: Int)
        /// net_null: each queue makes its own frames, none of them in a flow
        /// (no IP header), so no flow can reach two queues.
        case noFlows

        /// Whether the device is given the symmetric key.
        package var setsKey: Bool {
            if case .key = self { true } else { false }
        }

        /// What to say at start about port `port` when a cutoff is set.
        package func description(port: UInt16) -> String {
            switch self {
            case .oneQueue: "flow cutoff: port \(port) has one receive queue"
            case .key(let length): "flow cutoff: symmetric RSS key on port \(port) (\(length) bytes)"
            case .noFlows: "flow cutoff: port \(port) (net_null) makes frames of no flow"
            }
        }
    }

    /// How port `port` keeps both directions of each flow on one of its
    /// `rxQueues` queues, or why it cannot.
    /// - Parameters:
    ///   - hashFunctions: the RSS hash functions it spreads by (`Port.rssHashFunctions`).
    ///   - keySize: the device's `hash_key_size` (0: it does not say).
    package static func plan(
        port: UInt16,
        driver: String,
        rxQueues: Int,
        hashFunctions: UInt64,
        keySize: UInt8
    ) throws(CaptureError) -> Plan {
        guard rxQueues > 1 else { return .oneQueue }
        let fix = "Use one receive queue (-q 1) or no flow cutoff."
        let source = "port \(port) (\(driver)) has \(rxQueues) receive queues"
        let split = "a flow whose packets reach several queues would be counted apart on each, and more of it kept"
        switch driver {
        case "net_af_packet":
            throw CaptureError(
                "flow cutoff cannot count every flow once: \(source) and the kernel spreads frames over its sockets "
                    + "itself (DPDK 22.11 joins them to a PACKET_FANOUT_HASH group with PACKET_FANOUT_FLAG_ROLLOVER, "
                    + "which no device argument turns off). The kernel's hash is symmetric for TCP, UDP and SCTP, but "
                    + "it moves a flow to another socket when its ring fills, it hashes ESP and AH by each direction's "
                    + "own SPI and tunnels (GRE, IP in IP) by the packet inside: \(split)",
                fix: "Use one receive queue (qpairs=1 and -q 1), or no flow cutoff."
            )
        case "net_pcap":
            throw CaptureError(
                "flow cutoff cannot count every flow once: \(source), one per capture file or interface "
                    + "(rx_pcap=, iface=, rx_iface=), so the directions of a flow that two of them see reach two queues: "
                    + split,
                fix: "Use one receive queue (-q 1; merge capture files first: mergecap -w merged.pcap FILE...), "
                    + "or no flow cutoff."
            )
        case "net_null":
            return .noFlows
        default:
            guard hashFunctions != 0 else {
                throw CaptureError(
                    "flow cutoff cannot count every flow once: \(source) and spreads packets over them its own way, "
                        + "not by RSS over IP: \(split)",
                    fix: fix
                )
            }
            return .key(length: keySize == 0 ? defaultKeyLength : Int(keySize))
        }
    }
}
