import FastcapaCapture
import Foundation

/// Fastcapa's periodic table: for each stage, what came in, what is queued,
/// what went out and what was dropped, with rates since the last table.
public struct StatisticsTable {
    public init() {}

    private var previous: CaptureSnapshot?
    private var previousTime: Double = 0

    public mutating func render(_ snapshot: CaptureSnapshot, at time: Double) -> String {
        let elapsed = previous == nil ? 0 : time - previousTime
        let old = previous
        previous = snapshot
        previousTime = time
        let rx = snapshot.rx, tx = snapshot.tx, nic = snapshot.nic
        let oldRx = old?.rx, oldTx = old?.tx, oldNic = old?.nic
        func rate(_ now: UInt64, _ before: UInt64?) -> String {
            guard let before, elapsed > 0 else { return "-" }
            return Self.si(Double(now &- before) / elapsed) + "/s"
        }
        let header = "         \(pad("in", 12)) \(pad("in/s", 10)) \(pad("queued", 10)) \(pad("out", 12)) \(pad("out/s", 10)) \(pad("drops", 10))"
        let nicDrops = nic.missed + nic.errors + nic.noMbuf
        let txDrops = tx.queueFullDrops + tx.tooLargeDrops + tx.produceErrorDrops + tx.drainTimeoutDrops + tx.malformedDrops
        var rows = [
            row("[nic]", nic.received, rate(nic.received, oldNic?.received), "-", nic.received, rate(nic.received, oldNic?.received), nicDrops),
            row("[rx]", rx.received, rate(rx.received, oldRx?.received), "-", rx.enqueued, rate(rx.enqueued, oldRx?.enqueued), rx.ringFullDrops),
            row("[tx]", tx.dequeued, rate(tx.dequeued, oldTx?.dequeued), "\(snapshot.ringDepth)", tx.produced, rate(tx.produced, oldTx?.produced), txDrops),
            row("[kaf]", tx.produced, rate(tx.produced, oldTx?.produced), "\(tx.inFlight)", tx.delivered, rate(tx.delivered, oldTx?.delivered), tx.deliveryFailed),
        ]
        // With several queues or workers, one line each under the totals.
        if snapshot.perQueue.count > 1 {
            for (index, queue) in snapshot.perQueue.enumerated() {
                let before = old.flatMap { index < $0.perQueue.count ? $0.perQueue[index] : nil }
                rows.append(row("[rx \(index)]", queue.received, rate(queue.received, before?.received), "-",
                                queue.enqueued, rate(queue.enqueued, before?.enqueued), queue.ringFullDrops))
            }
        }
        if snapshot.perWorker.count > 1 {
            for (index, worker) in snapshot.perWorker.enumerated() {
                let before = old.flatMap { index < $0.perWorker.count ? $0.perWorker[index] : nil }
                rows.append(row("[kaf \(index)]", worker.produced, rate(worker.produced, before?.produced), "\(worker.inFlight)",
                                worker.delivered, rate(worker.delivered, before?.delivered), worker.deliveryFailed))
            }
        }
        return ([header] + rows).joined(separator: "\n")
    }

    private func row(_ stage: String, _ input: UInt64, _ inRate: String, _ queued: String, _ output: UInt64, _ outRate: String, _ drops: UInt64) -> String {
        "\(pad(stage, 8)) \(pad("\(input)", 12)) \(pad(inRate, 10)) \(pad(queued, 10)) \(pad("\(output)", 12)) \(pad(outRate, 10)) \(pad("\(drops)", 10))"
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

/// The final accounting: every packet received is delivered or dropped with a reason.
public enum Accounting {
    public static func text(_ snapshot: CaptureSnapshot, health: HealthSummary) -> String {
        let rx = snapshot.rx, tx = snapshot.tx, nic = snapshot.nic
        let reasons = snapshot.drops.map { "\($0.reason) \($0.count)" }.joined(separator: ", ")
        var lines = [
            "accounting: received \(rx.received) = delivered \(tx.delivered) + dropped \(snapshot.dropped) (\(reasons)) + in flight \(snapshot.inFlight)"
                + (snapshot.balances ? "" : "  ** DOES NOT BALANCE **"),
            "accounting: delivered \(tx.deliveredBytes) bytes; truncated to the snap length \(tx.truncated)",
            "accounting: before the probe (NIC): missed \(nic.missed), no mbuf \(nic.noMbuf), errors \(nic.errors)",
        ]
        lines.append("accounting: producer restarts \(health.restarts), messages re-produced after a restart \(tx.reproduced); health \(health.state)")
        lines.append("accounting-json: " + json(snapshot, health: health))
        return lines.joined(separator: "\n")
    }

    public static func json(_ snapshot: CaptureSnapshot, health: HealthSummary) -> String {
        let rx = snapshot.rx, tx = snapshot.tx, nic = snapshot.nic
        var fields: [(String, UInt64)] = [
            ("received", rx.received), ("received_bytes", rx.receivedBytes), ("enqueued", rx.enqueued),
            ("dequeued", tx.dequeued), ("produced", tx.produced), ("delivered", tx.delivered),
            ("delivered_bytes", tx.deliveredBytes), ("dropped", snapshot.dropped), ("in_flight", snapshot.inFlight),
            ("truncated", tx.truncated), ("queue_full_retries", tx.queueFullRetries), ("ring_full_waits", rx.ringFullWaits),
            ("reproduced", tx.reproduced), ("restarts", UInt64(health.restarts)),
            ("nic_received", nic.received), ("nic_missed", nic.missed), ("nic_no_mbuf", nic.noMbuf), ("nic_errors", nic.errors),
        ]
        fields += snapshot.drops.map { ("drop_\($0.reason)", $0.count) }
        let body = fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",")
        let queues = snapshot.perQueue.map { "\($0.received)" }.joined(separator: ",")
        let workers = snapshot.perWorker.map { "\($0.delivered)" }.joined(separator: ",")
        return "{\(body),\"received_per_queue\":[\(queues)],\"delivered_per_worker\":[\(workers)],"
            + "\"health\":\"\(health.state)\",\"balanced\":\(snapshot.balances)}"
    }
}
