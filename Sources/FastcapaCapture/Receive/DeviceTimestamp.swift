import CDPDK

/// How a device's receive timestamp becomes epoch microseconds.
package struct DeviceTimestamp: Sendable {
    package var fieldOffset: Int32
    package var flag: UInt64
    /// Device units per microsecond.
    package var unitsPerMicro: UInt64

    /// Epoch microseconds from a device timestamp.
    ///
    /// pcap files store seconds as an unsigned 32-bit number (good until 2106),
    /// but libpcap hands them to net_pcap as a signed one, so records from 2038
    /// on arrive as negative times. Such a value is 2^32 seconds too small.
    @inline(__always)
    package func micros(_ value: UInt64) -> UInt64 {
        let micros = value / unitsPerMicro
        return Int64(bitPattern: micros) < 0 ? micros &+ Self.pcapSecondsWrap : micros
    }

    static let pcapSecondsWrap: UInt64 = (1 << 32) * 1_000_000

    /// net_pcap (DPDK 22.11) stamps each packet with its pcap record's time in
    /// epoch microseconds. The fidelity test checks keys against the pcap times.
    static let netPcapUnitsPerMicro: UInt64 = 1

    /// The device timestamp field and flag, once a driver has registered them
    /// (net_pcap does when it starts); nil when absent.
    static func registered() -> DeviceTimestamp? {
        let field = rte_mbuf_dynfield_lookup(CDPDK_RTE_MBUF_DYNFIELD_TIMESTAMP_NAME(), nil)
        let bit = rte_mbuf_dynflag_lookup(CDPDK_RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME(), nil)
        guard field >= 0, bit >= 0 else { return nil }
        return DeviceTimestamp(fieldOffset: field, flag: 1 << UInt64(bit), unitsPerMicro: netPcapUnitsPerMicro)
    }
}
