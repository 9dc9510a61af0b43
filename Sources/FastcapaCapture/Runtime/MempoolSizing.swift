/// How many mbufs the capture pool needs, from the settings rather than a magic
/// constant: every descriptor of every queue can hold one, every ring slot can
/// hold one, every burst in flight holds some, and each lcore's cache keeps some:
/// up to 1.5 times the cache size, for DPDK flushes a cache only beyond that.
package struct MempoolSizing: Equatable, Sendable {
    package static let cacheSize = 256

    package var mbufs: Int

    package init(settings: CaptureSettings, ports: Int, lcores: Int) {
        let rings = ports * settings.rxQueues
        let perRing =
            settings.rxDescriptors + settings.ringSize
            + settings.rxBurst * (1 + settings.maxRebursts)
            + settings.txWorkersPerRing * settings.txBurst
        // Frames larger than one mbuf arrive as chains; leave a quarter more
        // for them so a run of jumbo frames does not starve the queues. A ring
        // full of 9,000-byte chains would need about 5 mbufs a packet: that is
        // not reserved (it would multiply the pool by 5 for every user); what the
        // pool lacks then shows as the NIC's rx_nombuf (Operations.md).
        let needed = rings * perRing + lcores * Self.cacheSize * 3 / 2
        let withChains = needed + needed / 4
        // DPDK mempools are most memory-efficient at 2^n - 1 elements.
        var size = 1
        while size - 1 < withChains { size <<= 1 }
        mbufs = size - 1
    }
}
