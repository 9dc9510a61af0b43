import CDPDK
import CLinux
import Glibc
import Synchronization

extension Port {
    /// The device's own counters: what it lost before the probe saw it.
    package struct Statistics: Sendable, Equatable {
        package var received: UInt64 = 0
        package var receivedBytes: UInt64 = 0
        package var missed: UInt64 = 0
        package var errors: UInt64 = 0
        package var noMbuf: UInt64 = 0
        /// Frames a kernel interface's packet sockets dropped before the driver
        /// read them (their buffer was full): libpcap's `ps_drop` (net_pcap's
        /// `imissed`), or af_packet's ring drops (PACKET_STATISTICS).
        package var kernelDropped: UInt64 = 0
        package init() {}

        package static func += (total: inout Self, port: Self) {
            total.received += port.received
            total.receivedBytes += port.receivedBytes
            total.missed += port.missed
            total.errors += port.errors
            total.noMbuf += port.noMbuf
            total.kernelDropped += port.kernelDropped
        }
    }

    /// The driver's extended statistics (name, value), e.g. per-queue and error counters.
    package func extendedStatistics() -> [(name: String, value: UInt64)] {
        let count = rte_eth_xstats_get_names(id, nil, 0)
        guard count > 0 else { return [] }
        var names = [rte_eth_xstat_name](repeating: rte_eth_xstat_name(), count: Int(count))
        var values = [rte_eth_xstat](repeating: rte_eth_xstat(), count: Int(count))
        let namesRead = rte_eth_xstats_get_names(id, &names, UInt32(count))
        let valuesRead = rte_eth_xstats_get(id, &values, UInt32(count))
        guard namesRead == count, valuesRead == count else { return [] }
        return values.map { value in
            let name = withUnsafeBytes(of: names[Int(value.id)].name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            return (name, value.value)
        }
    }

    package func statistics() -> Statistics {
        var stats = rte_eth_stats()
        guard rte_eth_stats_get(id, &stats) == 0 else { return Statistics() }
        var result = Statistics()
        result.received = stats.ipackets
        result.receivedBytes = stats.ibytes
        result.errors = stats.ierrors
        result.noMbuf = stats.rx_nombuf
        switch path.kind {
        case .pcapInterface:
            // net_pcap fills imissed from pcap_stats' ps_drop: the kernel's drops, not a NIC's.
            result.kernelDropped = stats.imissed
        case .afPacket:
            // DPDK's af_packet driver reports no drops; its sockets do.
            result.missed = stats.imissed
            result.kernelDropped = packetSockets?.dropped() ?? 0
        case .device, .pcapFile:
            result.missed = stats.imissed
        }
        return result
    }

    /// Whether the kernel's drops for this port are known: net_pcap on an
    /// interface, af_packet when its sockets could be found (false for ports
    /// without a kernel interface).
    package var kernelDropsVisible: Bool {
        switch path.kind {
        case .pcapInterface: true
        case .afPacket: packetSockets != nil
        case .device, .pcapFile: false
        }
    }
}

/// The drop counters of net_af_packet's sockets (one per queue), which DPDK
/// 22.11's driver neither reads nor exposes.
///
/// The driver keeps each socket in its private receive-queue structure, whose
/// first field is the descriptor (`struct pkt_rx_queue { int sockfd; ... }`);
/// `rte_eth_rx_burst` is handed that structure through the public fast-path
/// table. A descriptor read there is used only if the kernel confirms it is an
/// AF_PACKET socket bound to the port's interface; otherwise the drops stay
/// hidden (nil) and the start-up log says so. PACKET_STATISTICS resets the
/// kernel's counters on every read, so this object is their only reader and
/// keeps the running total.
final class PacketSocketDrops: Sendable {
    private let descriptors: [Int32]
    private let total = Mutex<(dropped: UInt64, closed: Bool)>((0, false))

    init?(port: UInt16, queues: Int, interfaceIndex: Int) {
        var descriptors: [Int32] = []
        for queue in 0..<queues {
            guard let queueData = CDPDK_rte_eth_fp_ops_rxq_data(port, UInt16(queue)) else { return nil }
            let fd = queueData.load(as: Int32.self)
            var index: Int32 = 0
            guard fd >= 0, CLinux_getsockname_sll_ifindex(fd, &index) == 0, Int(index) == interfaceIndex,
                !descriptors.contains(fd)
            else { return nil }
            descriptors.append(fd)
        }
        self.descriptors = descriptors
        _ = dropped()  // start from zero: what the sockets dropped before the probe read them is not this run's
        total.withLock { $0.dropped = 0 }
    }

    /// The frames the sockets' rings had no room for, since the port started.
    func dropped() -> UInt64 {
        total.withLock { total in
            guard !total.closed else { return total.dropped }
            for fd in descriptors {
                var packets: UInt32 = 0
                var drops: UInt32 = 0
                if CLinux_getsockopt_PACKET_STATISTICS(fd, &packets, &drops) == 0 { total.dropped += UInt64(drops) }
            }
            return total.dropped
        }
    }

    /// Reads the last drops; the port is about to close the sockets.
    func close() {
        _ = dropped()
        total.withLock { $0.closed = true }
    }
}
