import CDPDK

extension Port {
    /// The device's own counters: what it lost before the probe saw it.
    package struct Statistics: Sendable, Equatable {
        package var received: UInt64 = 0
        package var receivedBytes: UInt64 = 0
        package var missed: UInt64 = 0
        package var errors: UInt64 = 0
        package var noMbuf: UInt64 = 0
        package init() {}

        package static func += (total: inout Self, port: Self) {
            total.received += port.received
            total.receivedBytes += port.receivedBytes
            total.missed += port.missed
            total.errors += port.errors
            total.noMbuf += port.noMbuf
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
        result.missed = stats.imissed
        result.errors = stats.ierrors
        result.noMbuf = stats.rx_nombuf
        return result
    }
}
