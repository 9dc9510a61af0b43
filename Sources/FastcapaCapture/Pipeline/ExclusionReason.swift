import CFastcapaShared

/// Why a packet the probe received was, by the operator's choice, not published:
/// not a loss, so never a drop reason, and each its own term of the balance
/// (received = excluded + delivered + dropped + in flight). This list is the one
/// place each is named, described and tied to its counter: the table's column,
/// the accounting (`<name>`, `<name>_per_queue`) and `fastcapa_<name>_packets_total`
/// are read from `allCases`. A new one is a case here and a field in
/// CFastcapaShared's receive counters, which the receive lcores add to directly.
package enum ExclusionReason: String, CaseIterable, Sendable {
    /// Rejected by the capture filter (`-f`).
    case filtered
    /// Past its flow's cutoff (`--flow-cutoff-packets`, `--flow-cutoff-bytes`).
    case flowCutoff = "flow_cutoff"
    /// A copy of a frame seen within the duplicate window (`--dedup-window-us`).
    case duplicate

    /// Its name in the accounting, the table's header and the metric's name.
    package var name: String { rawValue }

    /// The `# HELP` of its metric.
    package var metricHelp: String {
        switch self {
        case .filtered: "Packets the capture filter rejected (freed on the receive lcore; not a drop)."
        case .flowCutoff: "Packets past their flow's cutoff (freed on the receive lcore; not a drop)."
        case .duplicate: "Copies of a frame seen within the duplicate window (freed on the receive lcore; not a drop)."
        }
    }

    /// The field of a receive queue's counter block that counts it (packets are excluded on the receive lcore).
    var counter: WritableKeyPath<fastcapa_rx_counters, UInt64> {
        switch self {
        case .filtered: \.filtered
        case .flowCutoff: \.flow_cutoff
        case .duplicate: \.duplicate
        }
    }
}
