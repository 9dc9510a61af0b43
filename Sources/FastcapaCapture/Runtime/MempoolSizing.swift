/// How many mbufs a port's pool needs, and how large each is, from the settings
/// and the port's receive path rather than a magic constant: every descriptor of
/// every queue can hold one (when the driver keeps mbufs in its descriptors),
/// every ring slot can hold one, every burst in flight holds some, and each
/// lcore's cache keeps some: up to 1.5 times the cache size, for DPDK flushes a
/// cache only beyond that.
package struct MempoolSizing: Equatable, Sendable {
    package static let cacheSize = 256
    /// What DPDK adds to each mbuf's data room: `struct rte_mbuf` (two cache
    /// lines) and the mempool's object header (one).
    package static let overheadPerMbuf = 192

    package var mbufs: Int
    /// Bytes of packet data per mbuf, headroom included (`rte_pktmbuf_pool_create`'s data_room_size).
    package var dataRoom: Int

    /// - Parameters:
    ///   - descriptorsHoldMbufs: false for drivers that take an mbuf only when they copy a frame (af_packet).
    ///   - chains: frames longer than one mbuf arrive as chains: a quarter more mbufs for them.
    package init(
        settings: CaptureSettings,
        ports: Int,
        lcores: Int,
        dataRoom: Int = 2176,
        descriptorsHoldMbufs: Bool = true,
        chains: Bool = true
    ) {
        let rings = ports * settings.rxQueues
        let perRing =
            (descriptorsHoldMbufs ? settings.rxDescriptors : 0) + settings.ringSize
            + settings.rxBurst * (1 + settings.maxRebursts)
            + settings.txWorkersPerRing * settings.txBurst
        let needed = rings * perRing + lcores * Self.cacheSize * 3 / 2
        // Frames larger than one mbuf arrive as chains; leave a quarter more
        // for them so a run of jumbo frames does not starve the queues. A ring
        // full of 9,000-byte chains would need about 5 mbufs a packet: that is
        // not reserved (it would multiply the pool by 5 for every user); what the
        // pool lacks then shows as the NIC's rx_nombuf (Operations.md).
        let withChains = chains ? needed + needed / 4 : needed
        // DPDK mempools are most memory-efficient at 2^n - 1 elements.
        var size = 1
        while size - 1 < withChains { size <<= 1 }
        mbufs = size - 1
        self.dataRoom = dataRoom
    }

    /// One port's pool, sized for its receive path.
    package init(settings: CaptureSettings, path: ReceivePath, lcores: Int) {
        self.init(
            settings: settings,
            ports: 1,
            lcores: lcores,
            dataRoom: path.dataRoom,
            descriptorsHoldMbufs: path.descriptorsHoldMbufs,
            chains: path.chains
        )
    }

    /// The pool's memory: more data room per mbuf (af_packet's `framesz`) times more mbufs (the ring size).
    package var bytes: Int { mbufs * (dataRoom + Self.overheadPerMbuf) }
}
