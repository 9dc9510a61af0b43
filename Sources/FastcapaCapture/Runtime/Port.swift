import CDPDK

/// One Ethernet port set up for capture: N receive queues spread by RSS,
/// promiscuous. The probe never sends; where the device has one, a transmit
/// queue of few descriptors is set up all the same, because rte_pdump (what
/// dpdk-dumpcap attaches through) refuses a port without one.
package struct Port: Sendable {
    package let id: UInt16
    package let driver: String
    package let socket: Int32
    package let rxQueues: Int
    /// Whether the device's receive timestamp offload is on (asked for wherever the device offers it).
    package let timestampOffload: Bool
    /// How both directions of each flow reach one queue, when a flow cutoff asked for it.
    package let flowQueueing: SymmetricRSS.Plan?

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

    /// How frames reach the probe: the driver, its kernel interface, what a packet buffer holds.
    package let path: ReceivePath
    /// The kernel's drops on af_packet's sockets, when they can be read.
    let packetSockets: PacketSocketDrops?

    /// - Parameter symmetricRSS: both directions of each flow on one queue (a flow cutoff needs it).
    package static func configure(
        path: ReceivePath,
        rxQueues: Int,
        rxDescriptors: Int,
        pool: OpaquePointer,
        symmetricRSS: Bool = false
    ) throws(CaptureError) -> Port {
        let id = path.port
        let driver = path.driver
        let (info, conf, descriptors, txDescriptors, flowQueueing) = try prepare(
            id,
            driver: driver,
            rxQueues: rxQueues,
            rxDescriptors: rxDescriptors,
            symmetricRSS: symmetricRSS
        )
        let socket = rte_eth_dev_socket_id(id)
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
        if info.max_tx_queues > 0 {
            // Unused: for rte_pdump only. A failure just means dpdk-dumpcap cannot attach.
            _ = rte_eth_tx_queue_setup(id, 0, max(txDescriptors, 64), UInt32(bitPattern: socket), nil)
        }
        status = rte_eth_dev_start(id)
        guard status == 0 else {
            throw CaptureError(
                "cannot start port \(id) (\(driver)): \(CaptureError.dpdkReason(-status))",
                fix: "See DPDK's log above; for net_pcap check that rx_pcap names a readable capture file."
                    + (flowQueueing?.setsKey == true
                        ? " If it blames the RSS key (the symmetric key a flow cutoff needs, which drivers such as "
                            + "ixgbe and i40e set when the port starts): use one receive queue (-q 1) or no flow cutoff."
                        : "")
            )
        }
        if case .key(let length) = flowQueueing {
            try checkKey(id, driver: driver, length: length)
        }
        // Some virtual devices have no promiscuous mode; they deliver everything anyway.
        _ = rte_eth_promiscuous_enable(id)
        var packetSockets: PacketSocketDrops?
        if case .afPacket = path.kind, let interface = path.interfaces.first {
            packetSockets = PacketSocketDrops(
                port: id,
                queues: rxQueues,
                interfaceIndex: KernelInterface.index(of: interface.name)
            )
        }
        return Port(
            id: id,
            driver: driver,
            socket: socket,
            rxQueues: rxQueues,
            timestampOffload: conf.rxmode.offloads & CDPDK_RTE_ETH_RX_OFFLOAD_TIMESTAMP() != 0,
            flowQueueing: flowQueueing,
            path: path,
            packetSockets: packetSockets
        )
    }

    /// Everything up to the queues (`ReceivePath.plan` checked their number):
    /// the device configured for capture, the descriptor counts it takes.
    static func prepare(
        _ id: UInt16,
        driver: String,
        rxQueues: Int,
        rxDescriptors: Int,
        symmetricRSS: Bool = false
    ) throws(CaptureError) -> (
        info: rte_eth_dev_info, conf: rte_eth_conf, rx: UInt16, tx: UInt16, flowQueueing: SymmetricRSS.Plan?
    ) {
        let info = try inspect(id)
        let (conf, flowQueueing) = try configureDevice(
            id,
            driver: driver,
            info: info,
            rxQueues: rxQueues,
            symmetricRSS: symmetricRSS
        )
        var descriptors = UInt16(rxDescriptors)
        var txDescriptors: UInt16 = 0
        let status = rte_eth_dev_adjust_nb_rx_tx_desc(id, &descriptors, &txDescriptors)
        guard status == 0 else {
            throw CaptureError(
                "port \(id) refused \(rxDescriptors) receive descriptors: \(CaptureError.dpdkReason(-status))",
                fix: "Use a descriptor count the device supports (rx-desc)."
            )
        }
        return (info, conf, descriptors, txDescriptors, flowQueueing)
    }

    /// `rte_eth_dev_configure` for capture: `rxQueues` queues spread by RSS over
    /// the hash functions the device offers, scatter, the device's timestamp and
    /// RSS hash when it has them, a jumbo MTU when it can scatter (its default
    /// MTU when it refuses that), one transmit queue for rte_pdump where the
    /// device has one. With `symmetricRSS`, both directions of each flow on one
    /// queue (`SymmetricRSS`), or the reason the device cannot. Returns the
    /// configuration the device took, and how it keeps flows on one queue when asked.
    static func configureDevice(
        _ id: UInt16,
        driver: String,
        info: rte_eth_dev_info,
        rxQueues: Int,
        symmetricRSS: Bool = false
    ) throws(CaptureError) -> (conf: rte_eth_conf, flowQueueing: SymmetricRSS.Plan?) {
        var conf = rte_eth_conf()
        let rss = rssHashFunctions(info, rxQueues: rxQueues)
        let flowQueueing: SymmetricRSS.Plan? =
            if symmetricRSS {
                try SymmetricRSS.plan(
                    port: id,
                    driver: driver,
                    rxQueues: rxQueues,
                    hashFunctions: rss,
                    keySize: info.hash_key_size
                )
            } else {
                nil
            }
        if rss != 0 {
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS
            conf.rx_adv_conf.rss_conf.rss_hf = rss
        }
        var keyLength = 0
        if case .key(let length) = flowQueueing {
            keyLength = length
            conf.rx_adv_conf.rss_conf.rss_key = SymmetricRSS.deviceKey
            conf.rx_adv_conf.rss_conf.rss_key_len = UInt8(length)
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
        let txQueues: UInt16 = info.max_tx_queues > 0 ? 1 : 0
        var status = rte_eth_dev_configure(id, UInt16(rxQueues), txQueues, &conf)
        if status != 0 && conf.rxmode.mtu != 0 {
            conf.rxmode.mtu = 0  // the device's default
            status = rte_eth_dev_configure(id, UInt16(rxQueues), txQueues, &conf)
        }
        guard status == 0 else {
            if keyLength > 0 {
                throw CaptureError(
                    "cannot configure port \(id) (\(driver)) with \(rxQueues) receive queues and the symmetric "
                        + "\(keyLength)-byte RSS key a flow cutoff needs (both directions of a flow on one queue): "
                        + CaptureError.dpdkReason(-status),
                    fix:
                        "Use one receive queue (-q 1) or no flow cutoff; DPDK's log above may say what the device refused."
                )
            }
            throw CaptureError(
                "cannot configure port \(id) (\(driver)) with \(rxQueues) receive queues: \(CaptureError.dpdkReason(-status))",
                fix: "Try fewer receive queues (rx-queues) or check the device's limits in DPDK's log above."
            )
        }
        return (conf, flowQueueing)
    }

    /// The RSS hash functions a port with `rxQueues` queues spreads by: IP, TCP,
    /// UDP and SCTP, as far as the device offers them (none with one queue).
    package static func rssHashFunctions(_ info: rte_eth_dev_info, rxQueues: Int) -> UInt64 {
        guard rxQueues > 1 else { return 0 }
        return (CDPDK_RTE_ETH_RSS_IP() | CDPDK_RTE_ETH_RSS_TCP() | CDPDK_RTE_ETH_RSS_UDP() | CDPDK_RTE_ETH_RSS_SCTP())
            & info.flow_type_rss_offloads
    }

    /// Reads the RSS key back from a started port (drivers program it at start)
    /// and refuses one that hashes with another: it would spread the directions
    /// of a flow over different queues. A device that does not report its key
    /// is trusted, since it took the key at configure.
    package static func checkKey(_ id: UInt16, driver: String, length: Int) throws(CaptureError) {
        var key = [UInt8](repeating: 0, count: Int(UInt8.max))
        var status: Int32 = 0
        key.withUnsafeMutableBufferPointer { buffer in
            var conf = rte_eth_rss_conf()
            conf.rss_key = buffer.baseAddress
            conf.rss_key_len = UInt8(length)
            status = rte_eth_dev_rss_hash_conf_get(id, &conf)
        }
        // Zeros: the driver answered without copying its key out.
        let reported = Array(key.prefix(length))
        guard status == 0, reported.contains(where: { $0 != 0 }) else { return }
        guard reported != SymmetricRSS.key(length: length) else { return }
        _ = rte_eth_dev_stop(id)
        throw CaptureError(
            "port \(id) (\(driver)) took the symmetric RSS key a flow cutoff needs at configure but reports "
                + "another once started: both directions of a flow could reach different queues",
            fix: "Use one receive queue (-q 1) or no flow cutoff."
        )
    }

    /// The MTU asked of devices that can scatter frames over several mbufs.
    static let jumboMTU: UInt16 = 9600

    package func stop() {
        packetSockets?.close()
        _ = rte_eth_dev_stop(id)
        _ = rte_eth_dev_close(id)
    }
}
