import CDPDK

/// One Ethernet port set up for capture: N receive queues spread by RSS,
/// promiscuous, no transmit.
public struct Port: Sendable {
    public let id: UInt16
    public let driver: String
    public let socket: Int32
    public let rxQueues: Int
    /// RSS hash functions actually in use (0: the device spreads packets itself or there is one queue).
    public let rssHashFunctions: UInt64
    /// Whether the device stamps packets with their capture time in epoch time
    /// (net_pcap does, from the pcap record).
    public let deliversEpochTimestamps: Bool

    /// Checks the port exists and can take `rxQueues` queues, without touching it.
    public static func inspect(_ id: UInt16) throws(CaptureError) -> rte_eth_dev_info {
        guard rte_eth_dev_is_valid_port(id) != 0 else {
            let available = rte_eth_dev_count_avail()
            throw CaptureError(
                "port \(id) is selected by the port mask but does not exist (DPDK found \(available) port\(available == 1 ? "" : "s"))",
                fix: available == 0
                    ? "Give DPDK a device: a --vdev (e.g. --vdev=net_pcap0,rx_pcap=FILE) or a NIC bound to a DPDK driver."
                    : "Use a port mask with bits for ports 0 to \(available - 1) only, e.g. -p 0x\(String((1 << available) - 1, radix: 16)).")
        }
        var info = rte_eth_dev_info()
        let status = rte_eth_dev_info_get(id, &info)
        guard status == 0 else {
            throw CaptureError("cannot read port \(id)'s device information (\(CaptureError.dpdkReason(-status)))", fix: "")
        }
        return info
    }

    public static func configure(
        id: UInt16, rxQueues: Int, rxDescriptors: Int, pool: OpaquePointer
    ) throws(CaptureError) -> Port {
        let info = try inspect(id)
        let driver = info.driver_name.map { String(cString: $0) } ?? "unknown"
        guard rxQueues <= Int(info.max_rx_queues) else {
            throw CaptureError(
                "port \(id) (\(driver)) has at most \(info.max_rx_queues) receive queue\(info.max_rx_queues == 1 ? "" : "s"); \(rxQueues) were asked for",
                fix: "Use -q \(info.max_rx_queues) or fewer (net_af_packet takes qpairs=N, net_null and net_ring accept more).")
        }
        let socket = rte_eth_dev_socket_id(id)
        var conf = rte_eth_conf()
        let rss = rxQueues > 1 ? cfc_rss_hash_functions_wanted() & info.flow_type_rss_offloads : 0
        if rss != 0 {
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS
            conf.rx_adv_conf.rss_conf.rss_hf = rss
        }
        // Whole frames of any size (scatter), the device's timestamp and RSS hash when it has them.
        let wanted = cfc_rx_offload_scatter() | cfc_rx_offload_timestamp() | (rss != 0 ? cfc_rx_offload_rss_hash() : 0)
        conf.rxmode.offloads = wanted & info.rx_offload_capa

        // Jumbo frames: a NIC drops frames above its MTU (1,500 by default) before
        // the probe sees them. With scatter, mbuf chains hold up to 9,600 bytes.
        if conf.rxmode.offloads & cfc_rx_offload_scatter() != 0 && info.max_mtu > 1500 {
            conf.rxmode.mtu = UInt32(min(info.max_mtu, Self.jumboMTU))
        }
        var status = rte_eth_dev_configure(id, UInt16(rxQueues), 0, &conf)
        if status != 0 && conf.rxmode.mtu != 0 {
            conf.rxmode.mtu = 0 // the device's default
            status = rte_eth_dev_configure(id, UInt16(rxQueues), 0, &conf)
        }
        guard status == 0 else {
            throw CaptureError("cannot configure port \(id) (\(driver)) with \(rxQueues) receive queues: \(CaptureError.dpdkReason(-status))",
                               fix: "Try fewer queues (-q) or check the device's limits in DPDK's log above.")
        }
        var descriptors = UInt16(rxDescriptors)
        var unusedTx: UInt16 = 0
        status = rte_eth_dev_adjust_nb_rx_tx_desc(id, &descriptors, &unusedTx)
        guard status == 0 else {
            throw CaptureError("port \(id) refused \(rxDescriptors) receive descriptors: \(CaptureError.dpdkReason(-status))",
                               fix: "Use a descriptor count the device supports (-d).")
        }
        var rxConf = info.default_rxconf
        rxConf.offloads = conf.rxmode.offloads
        for queue in 0..<rxQueues {
            status = rte_eth_rx_queue_setup(id, UInt16(queue), descriptors, UInt32(bitPattern: socket), &rxConf, pool)
            guard status == 0 else {
                throw CaptureError("cannot set up receive queue \(queue) of port \(id): \(CaptureError.dpdkReason(-status))",
                                   fix: "Check the mempool size and descriptor count (-d).")
            }
        }
        status = rte_eth_dev_start(id)
        guard status == 0 else {
            throw CaptureError("cannot start port \(id) (\(driver)): \(CaptureError.dpdkReason(-status))",
                               fix: "See DPDK's log above; for net_pcap check that rx_pcap names a readable capture file.")
        }
        // Some virtual devices have no promiscuous mode; they deliver everything anyway.
        _ = rte_eth_promiscuous_enable(id)
        return Port(
            id: id, driver: driver, socket: socket, rxQueues: rxQueues, rssHashFunctions: rss,
            deliversEpochTimestamps: driver == "net_pcap")
    }

    /// The MTU asked of devices that can scatter frames over several mbufs.
    static let jumboMTU: UInt16 = 9600

    /// net_pcap (DPDK 22.11) stamps each packet with its pcap record's time in
    /// epoch microseconds. The fidelity test checks keys against the pcap times.
    static let netPcapUnitsPerMicro: UInt64 = 1

    public func stop() {
        _ = rte_eth_dev_stop(id)
        _ = rte_eth_dev_close(id)
    }

    /// The device's own counters: what it lost before the probe saw it.
    public struct Statistics: Sendable, Equatable {
        public var received: UInt64 = 0
        public var receivedBytes: UInt64 = 0
        public var missed: UInt64 = 0
        public var errors: UInt64 = 0
        public var noMbuf: UInt64 = 0
        public init() {}
    }

    /// The driver's extended statistics (name, value), e.g. per-queue and error counters.
    public func extendedStatistics() -> [(name: String, value: UInt64)] {
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

    public func statistics() -> Statistics {
        var stats = rte_eth_stats()
        guard rte_eth_stats_get(id, &stats) == 0 else { return Statistics() }
        var result = Statistics()
        result.received = stats.ipackets
        result.receivedBytes = stats.ibytes
        result.missed = stats.imissed
        result.errors = stats.ierrors
        result.noMbuf = stats.rx_nombuf
        return result
    }
}
