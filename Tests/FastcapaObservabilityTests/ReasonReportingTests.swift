import FastcapaCapture
import Foundation
import Testing

@testable import FastcapaObservability

/// Every `DropReason` and every `ExclusionReason` reaches the metrics, the
/// statistics table and the accounting, each with its own count: a new case
/// cannot be left out of one of them.
@Suite struct ReasonReportingTests {
    static let queueLabels = ["0/0", "0/1"]

    /// Two queues and two workers; each reason counted where it is counted, with a count
    /// that is its own (the case's position plus a queue's or worker's offset).
    static func snapshot() -> CaptureSnapshot {
        func count(_ position: Int, _ block: Int) -> UInt64 { UInt64(100 * (position + 1) + block) }
        let perQueue = (0..<queueLabels.count).map { queue in
            var counts = ReceiveCounts()
            counts.received = 100_000
            for (position, reason) in DropReason.allCases.enumerated() where reason.stage == .receive {
                counts.drops[reason] = count(position, queue)
            }
            for (position, reason) in ExclusionReason.allCases.enumerated() {
                counts.exclusions[reason] = 10_000 + count(position, queue)
            }
            return counts
        }
        let perWorker = (0..<2).map { worker in
            var counts = TransmitCounts()
            for (position, reason) in DropReason.allCases.enumerated() where reason.stage != .receive {
                counts.drops[reason] = count(position, worker)
            }
            return counts
        }
        return CaptureSnapshot(perQueue: perQueue, perWorker: perWorker, workersStopped: true)
    }

    @Test func everyReasonHasItsOwnCount() {
        let snapshot = Self.snapshot()
        let counts = DropReason.allCases.map { snapshot.drops[$0] }
        #expect(Set(counts).count == DropReason.allCases.count && !counts.contains(0))
        #expect(snapshot.dropped == counts.reduce(0, +))
        #expect(Set(DropReason.allCases.map(\.name)).count == DropReason.allCases.count)
        #expect(Set(DropReason.allCases.map(\.name)).isDisjoint(with: ExclusionReason.allCases.map(\.name)))
    }

    @Test func everyReasonIsInTheAccounting() throws {
        let snapshot = Self.snapshot()
        let json = Accounting.json(snapshot, health: HealthSummary(), final: true)
        let fields = try #require(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        for reason in DropReason.allCases {
            #expect(fields["drop_\(reason.name)"] as? Int == Int(snapshot.drops[reason]), "drop_\(reason.name)")
        }
        #expect(fields["dropped"] as? Int == Int(snapshot.dropped))
        for reason in ExclusionReason.allCases {
            #expect(fields[reason.name] as? Int == Int(snapshot.exclusions[reason]), "\(reason.name)")
            let perQueue = snapshot.perQueue.map { Int($0.exclusions[reason]) }
            #expect(fields["\(reason.name)_per_queue"] as? [Int] == perQueue, "\(reason.name)_per_queue")
        }
        let line = try #require(
            Accounting.text(snapshot, health: HealthSummary()).split(separator: "\n").first.map(String.init)
        )
        let listed = try #require(line.split(separator: "(").dropFirst().first?.split(separator: ")").first)
        #expect(
            listed.split(separator: ", ").map(String.init)
                == DropReason.allCases.map { "\($0.name) \(snapshot.drops[$0])" },
            "\(line)"
        )
        for reason in ExclusionReason.allCases {
            #expect(line.contains(" \(reason.name) \(snapshot.exclusions[reason]) + "), "\(reason.name) in '\(line)'")
        }
    }

    @Test func everyReasonIsInTheMetrics() {
        let snapshot = Self.snapshot()
        let latest = {
            var latest = PipelineMonitor.Snapshot()
            latest.capture = snapshot
            return latest
        }()
        let exporter = MetricsExporter(
            queueLabels: Self.queueLabels,
            ringCapacities: [],
            latest: { latest },
            buildInfo: []
        )
        let lines = exporter.render().split(separator: "\n").map(String.init)
        func value(_ name: String, _ labels: String) -> UInt64? {
            lines.first { $0.hasPrefix("\(name){\(labels)} ") }.flatMap { $0.split(separator: " ").last }
                .flatMap { UInt64($0) }
        }
        for reason in DropReason.allCases {
            let series: [(label: String, counts: UInt64)] =
                reason.stage == .receive
                ? snapshot.perQueue.enumerated().map { ("queue=\"\(Self.queueLabels[$0])\"", $1.drops[reason]) }
                : snapshot.perWorker.enumerated().map { ("worker=\"\($0)\"", $1.drops[reason]) }
            for (label, count) in series {
                let labels = "\(label),reason=\"\(reason.name)\""
                #expect(value("fastcapa_dropped_packets_total", labels) == count, "\(labels)")
            }
        }
        let dropLines = lines.filter { $0.hasPrefix("fastcapa_dropped_packets_total{") }
        #expect(
            dropLines.compactMap { $0.split(separator: " ").last.flatMap { UInt64($0) } }.reduce(0, +)
                == snapshot.dropped
        )
        for reason in ExclusionReason.allCases {
            let name = MetricsExporter.metricName(reason)
            #expect(lines.contains("# HELP \(name) \(reason.metricHelp)"), "\(name)")
            for (queue, counts) in snapshot.perQueue.enumerated() {
                #expect(value(name, "queue=\"\(Self.queueLabels[queue])\"") == counts.exclusions[reason], "\(name)")
            }
        }
        let receiveReasons = DropReason.allCases.filter { $0.stage == .receive }.map(\.name)
        #expect(MetricsExporter.droppedHelp.contains(receiveReasons.joined(separator: ", ") + " per receive queue"))
    }

    @Test func everyReasonIsInTheTable() throws {
        let snapshot = Self.snapshot()
        var table = StatisticsTable()
        let text = table.render(snapshot, at: 0)
        let rows = text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let header = try #require(rows.first)
        let dropsColumn = try #require(header.firstIndex(of: "drops")) + 1  // the rows start with their stage
        func drops(_ stage: String) -> UInt64? {
            rows.first { $0.first == stage }.flatMap { UInt64($0[dropsColumn]) }
        }
        // Each drop is in its stage's row, and the rows add up to every drop.
        let stages: [(row: String, stage: DropReason.Stage)] = [
            ("[rx]", .receive), ("[tx]", .transmit), ("[kaf]", .delivery),
        ]
        for (row, stage) in stages {
            let expected = DropReason.allCases.filter { $0.stage == stage }.reduce(0) { $0 + snapshot.drops[$1] }
            #expect(drops(row) == expected, "\(row)")
        }
        #expect(stages.compactMap { drops($0.row) }.reduce(0, +) == snapshot.dropped)
        // Each exclusion has a column, filled for the receive queues.
        for reason in ExclusionReason.allCases {
            let column = try #require(header.firstIndex(of: reason.name), "\(reason.name)") + 1
            let rx = try #require(rows.first { $0.first == "[rx]" })
            #expect(UInt64(rx[column]) == snapshot.exclusions[reason], "\(reason.name)")
        }
    }
}
