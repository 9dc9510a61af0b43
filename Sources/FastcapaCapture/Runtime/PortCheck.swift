import CDPDK

/// What `fastcapa check` learns about a port by configuring it as a capture
/// would (queues, RSS, offloads, MTU, descriptors) and closing it again,
/// without starting it: no packet is received.
package struct PortCheck: Sendable {
    package var id: UInt16
    /// DPDK's name for the device: its PCI address, or the virtual device's name.
    package var name: String
    package var driver: String
    /// NUMA node (-1: unknown).
    package var socket: Int32
    package var rxQueues: Int
    package var maxRxQueues: Int
    /// RSS hash functions the capture would use (empty with one queue).
    package var rss: [String]
    package var mtu: Int
    package var maxMTU: Int
    package var scatter: Bool
    package var timestampOffload: Bool
    /// Which clock would give the port's capture times.
    package var captureTime: PortCaptureTime
    package var rxDescriptors: Int
    /// How both directions of each flow reach one queue, when a flow cutoff asked for it.
    package var flowQueueing: SymmetricRSS.Plan?
    /// Worth knowing, not wrong (the port works): another NUMA node, no RSS.
    package var warnings: [String]

    /// Every port DPDK found: id and name.
    package static func available() -> [(id: UInt16, name: String)] {
        var ports: [(UInt16, String)] = []
        var id = rte_eth_find_next(0)
        while id < RTE_MAX_ETHPORTS {
            ports.append((UInt16(id), name(of: UInt16(id))))
            id = rte_eth_find_next(id + 1)
        }
        return ports
    }

    static func name(of id: UInt16) -> String {
        var buffer = [CChar](repeating: 0, count: Int(RTE_ETH_NAME_MAX_LEN))
        guard rte_eth_dev_get_name_by_port(id, &buffer) == 0 else { return "port \(id)" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Configures port `id` as the capture would, reads back what it took, and closes it.
    /// - Parameters:
    ///   - lcoreSockets: NUMA nodes of the worker lcores, to compare with the port's.
    ///   - symmetricRSS: both directions of each flow on one queue (a flow cutoff needs it).
    package static func check(
        _ id: UInt16,
        rxQueues: Int,
        rxDescriptors: Int,
        lcoreSockets: Set<Int32>,
        symmetricRSS: Bool = false
    ) throws(CaptureError) -> PortCheck {
        // The capture's own checks (queues, a kernel interface's frame lengths); a missing port is not closed.
        let path = try ReceivePath.plan(port: id, info: Port.inspect(id), rxQueues: rxQueues)
        defer { _ = rte_eth_dev_close(id) }
        let driver = path.driver
        let (info, conf, descriptors, _, flowQueueing) = try Port.prepare(
            id,
            driver: driver,
            rxQueues: rxQueues,
            rxDescriptors: rxDescriptors,
            symmetricRSS: symmetricRSS
        )
        var mtu: UInt16 = 0
        if rte_eth_dev_get_mtu(id, &mtu) != 0 { mtu = UInt16(truncatingIfNeeded: conf.rxmode.mtu) }
        let hashes: [(UInt64, String)] = [
            (CDPDK_RTE_ETH_RSS_IP(), "ip"), (CDPDK_RTE_ETH_RSS_TCP(), "tcp"), (CDPDK_RTE_ETH_RSS_UDP(), "udp"),
            (CDPDK_RTE_ETH_RSS_SCTP(), "sctp"),
        ]
        let rss = hashes.filter { conf.rx_adv_conf.rss_conf.rss_hf & $0.0 != 0 }.map(\.1)
        let socket = rte_eth_dev_socket_id(id)
        var warnings = path.warnings
        if rxQueues > 1 && rss.isEmpty {
            warnings.append(
                "the device offers no RSS over IP, TCP, UDP or SCTP: it spreads packets over the queues its own way"
            )
        }
        let elsewhere = lcoreSockets.subtracting([socket, -1])
        if socket >= 0 && !elsewhere.isEmpty {
            warnings.append(
                "the port is on NUMA node \(socket) but worker lcores are on node \(elsewhere.sorted().map(String.init).joined(separator: ", ")): packets cross nodes (Operations.md, \"Lcores and NUMA\")"
            )
        }
        let scatter = conf.rxmode.offloads & CDPDK_RTE_ETH_RX_OFFLOAD_SCATTER() != 0
        // A NIC (a PCI address) drops what exceeds its MTU; virtual devices do not.
        if !scatter && info.max_mtu > 1500 && name(of: id).contains(":") {
            warnings.append(
                "the device cannot scatter frames over several buffers: frames above its MTU (\(mtu)) are dropped by the NIC"
            )
        }
        let timestampOffload = conf.rxmode.offloads & CDPDK_RTE_ETH_RX_OFFLOAD_TIMESTAMP() != 0
        let timestamps = DeviceTimestamp.inspect(id, driver: driver, timestampOffload: timestampOffload)
        return PortCheck(
            id: id,
            name: name(of: id),
            driver: driver,
            socket: socket,
            rxQueues: rxQueues,
            maxRxQueues: Int(info.max_rx_queues),
            rss: rss,
            mtu: Int(mtu),
            maxMTU: Int(info.max_mtu),
            scatter: scatter,
            timestampOffload: timestampOffload,
            captureTime: PortCaptureTime(
                port: id,
                driver: driver,
                base: timestamps?.base,
                ticksPerSecond: timestamps?.clock?.ticksPerSecond
            ),
            rxDescriptors: Int(descriptors),
            flowQueueing: flowQueueing,
            warnings: warnings
        )
    }

    /// The NUMA node of each lcore.
    package static func sockets(of lcores: [UInt32]) -> Set<Int32> {
        Set(lcores.map { Int32(bitPattern: rte_lcore_to_socket_id($0)) })
    }
}
