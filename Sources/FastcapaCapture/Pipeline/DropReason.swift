import CFastcapaShared

/// Why a packet the probe received was not delivered. This list is the one place
/// each reason is named and tied to the counter that counts it: the snapshot's
/// drops and what a worker holds, the statistics table, the accounting
/// (`drop_<name>`) and `fastcapa_dropped_packets_total{reason="<name>"}` are all
/// read from `allCases`, in this order. A new reason is a case here and a field
/// in CFastcapaShared's counter blocks, which the worker lcores add to directly.
package enum DropReason: String, CaseIterable, Sendable {
    /// A transmit ring was full.
    case ringFull = "ring_full"
    /// librdkafka's queue stayed full past the retry budget.
    case queueFull = "queue_full"
    /// Larger than librdkafka's `message.max.bytes`.
    case tooLarge = "too_large"
    /// Any other refusal by librdkafka's produce call.
    case produceError = "produce_error"
    /// A delivery report with an error, not produced again.
    case deliveryFailed = "delivery_failed"
    /// Still in a ring (or held by a worker) when the drain timeout ran out.
    case drainTimeout = "drain_timeout"
    /// The driver's segments hold fewer bytes than the frame's length.
    case malformed
    /// Freed unsent by the null sink (`--sink null`).
    case nullSink = "null_sink"

    /// Its name in the accounting, the metrics' `reason` label and the documentation.
    package var name: String { rawValue }

    /// Where a packet is dropped: which counter block counts it, and which row of the table shows it.
    package enum Stage: Sendable {
        /// On a receive lcore, before the ring: counted per receive queue (`[rx]`).
        case receive
        /// On a transmit lcore, in place of producing: counted per transmit worker (`[tx]`).
        case transmit
        /// In a delivery report, after producing: counted per transmit worker (`[kaf]`).
        case delivery
    }

    /// The field of a receive queue's or a transmit worker's counter block that counts it.
    enum Counter {
        case receive(WritableKeyPath<fastcapa_rx_counters, UInt64>)
        case transmit(WritableKeyPath<fastcapa_tx_counters, UInt64>)
        case delivery(WritableKeyPath<fastcapa_tx_counters, UInt64>)
    }

    var counter: Counter {
        switch self {
        case .ringFull: .receive(\.ring_full_drops)
        case .queueFull: .transmit(\.queue_full_drops)
        case .tooLarge: .transmit(\.too_large_drops)
        case .produceError: .transmit(\.produce_error_drops)
        case .deliveryFailed: .delivery(\.delivery_failed)
        case .drainTimeout: .transmit(\.drain_timeout_drops)
        case .malformed: .transmit(\.malformed_drops)
        case .nullSink: .transmit(\.null_sink_drops)
        }
    }

    /// Its field in a receive queue's counters (nil: a transmit worker counts it).
    var receiveCounter: WritableKeyPath<fastcapa_rx_counters, UInt64>? {
        switch counter {
        case .receive(let field): field
        case .transmit, .delivery: nil
        }
    }

    /// Its field in a transmit worker's counters (nil: a receive queue counts it).
    var transmitCounter: WritableKeyPath<fastcapa_tx_counters, UInt64>? {
        switch counter {
        case .receive: nil
        case .transmit(let field), .delivery(let field): field
        }
    }

    package var stage: Stage {
        switch counter {
        case .receive: .receive
        case .transmit: .transmit
        case .delivery: .delivery
        }
    }
}

extension ReasonCounts where Reason == DropReason {
    /// The drops of one stage.
    package func total(_ stage: DropReason.Stage) -> UInt64 {
        all.reduce(0) { $1.reason.stage == stage ? $0 + $1.count : $0 }
    }
}
