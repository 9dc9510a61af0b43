import FastcapaCapture
import Foundation

/// Fastcapa's periodic table: for each stage, what came in, what is queued,
/// what went out and what was dropped (each `DropReason` in its stage's row),
/// with rates since the last table; and, for the receive workers, a column for
/// each `ExclusionReason` the run can count (the capture filter's rejections,
/// and the flow cutoff's and duplicate window's when they are on: not drops);
/// a line for the flow tables when a cutoff is on; and a line for each port
/// whose link is down.
package struct StatisticsTable {
    package init() {}

    private var previous: CaptureSnapshot?
    private var previousTime: Double = 0

    package mutating func render(_ snapshot: CaptureSnapshot, at time: Double) -> String {
        let elapsed = previous == nil ? 0 : time - previousTime
        let old = previous
        previous = snapshot
        previousTime = time
        let rx = snapshot.rx
        let tx = snapshot.tx
        let nic = snapshot.nic
        let oldRx = old?.rx
        let oldTx = old?.tx
        let oldNic = old?.nic
        func rate(_ now: UInt64, _ before: UInt64?) -> String {
            guard let before, elapsed > 0 else { return "-" }
            return Self.si(Double(now &- before) / elapsed) + "/s"
        }
        exclusions = snapshot.activeExclusions
        let header =
            "         \(pad("in", 12)) \(pad("in/s", 10)) \(pad("queued", 10)) \(pad("out", 12)) \(pad("out/s", 10)) \(pad("drops", 10))"
            + exclusions.map { " \(pad($0.name, 12))" }.joined()
        let nicDrops = nic.missed + nic.errors + nic.noMbuf + nic.kernelDropped
        var rows = [
            row(
                "[nic]",
                nic.received,
                rate(nic.received, oldNic?.received),
                "-",
                nic.received,
                rate(nic.received, oldNic?.received),
                nicDrops
            ),
            row(
                "[rx]",
                rx.received,
                rate(rx.received, oldRx?.received),
                "-",
                rx.enqueued,
                rate(rx.enqueued, oldRx?.enqueued),
                rx.drops.total(.receive),
                excluded: rx.exclusions
            ),
            row(
                "[tx]",
                tx.dequeued,
                rate(tx.dequeued, oldTx?.dequeued),
                "\(snapshot.ringDepth)",
                tx.produced,
                rate(tx.produced, oldTx?.produced),
                tx.drops.total(.transmit)
            ),
            row(
                "[kaf]",
                tx.produced,
                rate(tx.produced, oldTx?.produced),
                "\(snapshot.kafkaQueued)",
                tx.delivered,
                rate(tx.delivered, oldTx?.delivered),
                tx.drops.total(.delivery)
            ),
        ]
        // With several queues or workers, one line each under the totals.
        if snapshot.perQueue.count > 1 {
            for (index, queue) in snapshot.perQueue.enumerated() {
                let before = old.flatMap { index < $0.perQueue.count ? $0.perQueue[index] : nil }
                rows.append(
                    row(
                        "[rx \(index)]",
                        queue.received,
                        rate(queue.received, before?.received),
                        "-",
                        queue.enqueued,
                        rate(queue.enqueued, before?.enqueued),
                        queue.drops.total(.receive),
                        excluded: queue.exclusions
                    )
                )
            }
        }
        if snapshot.perWorker.count > 1 {
            for (index, worker) in snapshot.perWorker.enumerated() {
                let before = old.flatMap { index < $0.perWorker.count ? $0.perWorker[index] : nil }
                rows.append(
                    row(
                        "[kaf \(index)]",
                        worker.produced,
                        rate(worker.produced, before?.produced),
                        "\(index < snapshot.producers.count ? snapshot.producers[index].kafkaQueued : 0)",
                        worker.delivered,
                        rate(worker.delivered, before?.delivered),
                        worker.drops.total(.delivery)
                    )
                )
            }
        }
        // The flow tables (every queue's together): how full, how many flows come and go.
        if exclusions.contains(.flowCutoff) {
            rows.append(
                "\(pad("[flows]", 8)) active \(rx.flowsActive), created \(rx.flowsCreated) "
                    + "(\(rate(rx.flowsCreated, oldRx?.flowsCreated))), expired \(rx.flowsExpired), "
                    + "cut \(Self.si(Double(rx.flowCutoffBytes)))B, table full \(rx.flowTableFull)"
            )
        }
        if exclusions.contains(.duplicate) && rx.duplicateEvicted > 0 {
            rows.append(
                "\(pad("[dedup]", 8)) \(rx.duplicateEvicted) frames left the duplicate window early: "
                    + "it is too small (--dedup-table-size)"
            )
        }
        // A port whose link is down: a line of its own under the rows (the columns hold counts).
        for link in snapshot.links where !link.up {
            rows.append(
                "\(pad("[link]", 8)) port \(link.port) down, no packet for \(String(format: "%.0f", link.idleSeconds)) s"
            )
        }
        return ([header] + rows).joined(separator: "\n")
    }

    /// The exclusion columns of the table being rendered.
    private var exclusions: [ExclusionReason] = ExclusionReason.allCases

    private func row(
        _ stage: String,
        _ input: UInt64,
        _ inRate: String,
        _ queued: String,
        _ output: UInt64,
        _ outRate: String,
        _ drops: UInt64,
        excluded: ReasonCounts<ExclusionReason>? = nil
    ) -> String {
        "\(pad(stage, 8)) \(pad("\(input)", 12)) \(pad(inRate, 10)) \(pad(queued, 10)) \(pad("\(output)", 12)) \(pad(outRate, 10)) \(pad("\(drops)", 10))"
            + exclusions.map { reason in " \(pad(excluded.map { "\($0[reason])" } ?? "-", 12))" }.joined()
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    static func si(_ value: Double) -> String {
        switch value {
        case 1e9...: String(format: "%.2fG", value / 1e9)
        case 1e6...: String(format: "%.2fM", value / 1e6)
        case 1e3...: String(format: "%.1fk", value / 1e3)
        default: String(format: "%.0f", value)
        }
    }
}
