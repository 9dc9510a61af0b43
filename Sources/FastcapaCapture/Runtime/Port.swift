import CDPDK

/// One Ethernet port set up for capture: N receive queues spread by RSS,
/// promiscuous, no transmit.
package struct Port: Sendable {
    package let id: UInt16
    package let driver: String
    package let socket: Int32
    package let rxQueues: Int
    /// RSS hash functions actually in use (0: the device spreads packets itself or there is one queue).
    package let rssHashFunctions: UInt64
    /// Whether the device stamps packets with their capture time in epoch time
    /// (net_pcap does, from the pcap record).
    package let deliversEpochTimestamps: Bool

    /// Checks the port exists and can take `rxQueues` queues, without touching it.
    package static func inspect(_ id: UInt16) throws(CaptureError) -> rte_eth_dev_info {
        guard rte_eth_dev_is_valid_port(id) != 0 else {
            let available = rte_eth_dev_count_avail()
            throw CaptureError(
                "port \(id) is selected by the port mask but does not exist (DPDK found \(available) port\(available == 1 ? "" : "s"))",
                fix: available == 0
                    ? "Give DPDK a device: a --vdev (e.g. --vdev=net_pcap0,rx_pcap=FILE) or a NIC bound to a DPDK driver."
                    : "Use a port mask with bits for ports 0 to \(available - 1) only, e.g. 0x\(String((1 << available) - 1, radix: 16))."
            )
        }
        var info = rte_eth_dev_info()
        let status = rte_eth_dev_info_get(id, &info)
        guard status == 0 else {
            throw CaptureError(
                "cannot read port \(id)'s device information (\(CaptureError.dpdkReason(-status)))",
                fix: ""
            )
        }
        return info
    }

    package static func configure(
        id: UInt16,
        rxQueues: Int,
        rxDescriptors: Int,
        pool: OpaquePointer
    ) throws(CaptureError) -> Port {
        let (info, driver, conf, descriptors) = try prepare(id, rxQueues: rxQueues, rxDescriptors: rxDescriptors)
        let socket = rte_eth_dev_socket_id(id)
        let rss = conf.rx_adv_conf.rss_conf.rss_hf
        var rxConf = info.default_rxconf
        rxConf.offloads = conf.rxmode.offloads
        var status: Int32
        for queue in 0..<rxQueues {
            status = rte_eth_rx_queue_setup(id, UInt16(queue), descriptors, UInt32(bitPattern: socket), &rxConf, pool)
            guard status == 0 else {
                throw CaptureError(
                    "cannot set up receive queue \(queue) of port \(id): \(CaptureError.dpdkReason(-status))",
                    fix: "Check the mempool size and the descriptor count (rx-desc)."
                )
            }
        }
        status = rte_eth_dev_start(id)
        guard status == 0 else {
            throw CaptureError(
                "cannot start port \(id) (\(driver)): \(CaptureError.dpdkReason(-status))",
                fix: "See DPDK's log above; for net_pcap check that rx_pcap names a readable capture file."
            )
        }
        // Some virtual devices have no promiscuous mode; they deliver everything anyway.
        _ = rte_eth_promiscuous_enable(id)
        return Port(
            id: id,
            driver: driver,
            socket: socket,
            rxQueues: rxQueues,
            rssHashFunctions: rss,
            deliversEpochTimestamps: driver == "net_pcap"
        )
    }

    /// Everything up to the queues: the device checked and configured for
    /// capture, the descriptor count it takes.
    static func prepare(
        _ id: UInt16,
        rxQueues: Int,
        rxDescriptors: Int
    ) throws(CaptureError) -> (info: rte_eth_dev_info, driver: String, conf: rte_eth_conf, descriptors: UInt16) {
        let info = try inspect(id)
        let driver = driverName(info)
        try checkQueues(id, driver: driver, info: info, rxQueues: rxQueues)
        let conf = try configureDevice(id, driver: driver, info: info, rxQueues: rxQueues)
        var descriptors = UInt16(rxDescriptors)
        var unusedTx: UInt16 = 0
        let status = rte_eth_dev_adjust_nb_rx_tx_desc(id, &descriptors, &unusedTx)
        guard status == 0 else {
            throw CaptureError(
                "port \(id) refused \(rxDescriptors) receive descriptors: \(CaptureError.dpdkReason(-status))",
                fix: "Use a descriptor count the device supports (rx-desc)."
            )
        }
        return (info, driver, conf, descriptors)
    }

    static func driverName(_ info: rte_eth_dev_info) -> String {
        info.driver_name.map { String(cString: $0) } ?? "unknown"
    }

    /// The device has `rxQueues` receive queues.
    static func checkQueues(_ id: UInt16, driver: String, info: rte_eth_dev_info, rxQueues: Int) throws(CaptureError) {
        guard rxQueues > Int(info.max_rx_queues) else { return }
        throw CaptureError(
            "port \(id) (\(driver)) has at most \(info.max_rx_queues) receive queue\(info.max_rx_queues == 1 ? "" : "s"); \(rxQueues) were asked for",
            fix:
                "Use \(info.max_rx_queues) receive queue\(info.max_rx_queues == 1 ? "" : "s") or fewer (rx-queues; net_af_packet takes qpairs=N, net_null and net_ring accept more)."
        )
    }

    /// `rte_eth_dev_configure` for capture: `rxQueues` queues spread by RSS over
    /// the hash functions the device offers, scatter, the device's timestamp and
    /// RSS hash when it has them, a jumbo MTU when it can scatter (its default
    /// MTU when it refuses that). Returns the configuration the device took.
    static func configureDevice(
        _ id: UInt16,
        driver: String,
        info: rte_eth_dev_info,
        rxQueues: Int
    ) throws(CaptureError) -> rte_eth_conf {
        var conf = rte_eth_conf()
        let rss =
            rxQueues > 1
            ? (CDPDK_RTE_ETH_RSS_IP() | CDPDK_RTE_ETH_RSS_TCP() | CDPDK_RTE_ETH_RSS_UDP() | CDPDK_RTE_ETH_RSS_SCTP())
                & info.flow_type_rss_offloads : 0
        if rss != 0 {
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS
            conf.rx_adv_conf.rss_conf.rss_hf = rss
        }
        // Whole frames of any size (scatter), the device's timestamp and RSS hash when it has them.
        let wanted =
            CDPDK_RTE_ETH_RX_OFFLOAD_SCATTER() | CDPDK_RTE_ETH_RX_OFFLOAD_TIMESTAMP()
            | (rss != 0 ? CDPDK_RTE_ETH_RX_OFFLOAD_RSS_HASH() : 0)
        conf.rxmode.offloads = wanted & info.rx_offload_capa

        // Jumbo frames: a NIC drops frames above its MTU (1,500 by default) before
        // the probe sees them. With scatter, mbuf chains hold up to 9,600 bytes.
        if conf.rxmode.offloads & CDPDK_RTE_ETH_RX_OFFLOAD_SCATTER() != 0 && info.max_mtu > 1500 {
            conf.rxmode.mtu = UInt32(min(info.max_mtu, Self.jumboMTU))
        }
        var status = rte_eth_dev_configure(id, UInt16(rxQueues), 0, &conf)
        if status != 0 && conf.rxmode.mtu != 0 {
            conf.rxmode.mtu = 0  // the device's default
            status = rte_eth_dev_configure(id, UInt16(rxQueues), 0, &conf)
        }
        guard status == 0 else {
            throw CaptureError(
                "cannot configure port \(id) (\(driver)) with \(rxQueues) receive queues: \(CaptureError.dpdkReason(-status))",
                fix: "Try fewer receive queues (rx-queues) or check the device's limits in DPDK's log above."
            )
        }
        return conf
    }

    /// The MTU asked of devices that can scatter frames over several mbufs.
    static let jumboMTU: UInt16 = 9600

    package func stop() {
        _ = rte_eth_dev_stop(id)
        _ = rte_eth_dev_close(id)
    }
}
