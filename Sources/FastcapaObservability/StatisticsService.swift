import FastcapaCapture
import FastcapaSupervision
import Foundation
import ServiceLifecycle

/// Samples the per-lcore counters and the ports' counters, and publishes them
/// with librdkafka's statistics (handed over by the producer supervisors): the
/// periodic table on standard output, librdkafka's JSON to the statistics file
/// (-s), and, when asked, a counter trace (one line per sample: elapsed ms,
/// received, delivered, restarts).
package actor StatisticsService: Service {
    package struct Outputs: Sendable {
        package var tableInterval: Int
        package var statisticsFile: FileHandle?
        package var traceFile: FileHandle?
        package var traceIntervalMs: Int
        package init(tableInterval: Int, statisticsFile: FileHandle?, traceFile: FileHandle?, traceIntervalMs: Int) {
            self.tableInterval = tableInterval
            self.statisticsFile = statisticsFile
            self.traceFile = traceFile
            self.traceIntervalMs = traceIntervalMs
        }
    }

    private let pipeline: CapturePipeline
    private let outputs: Outputs
    private var table = StatisticsTable()
    private let started = ProcessInfo.processInfo.systemUptime
    private var healthSource: @Sendable () async -> HealthSummary = { HealthSummary() }

    package init(pipeline: CapturePipeline, outputs: Outputs) {
        self.pipeline = pipeline
        self.outputs = outputs
    }

    /// Where the table, the -s snapshot and the counter trace read the probe's health.
    package func setHealthSource(_ source: @escaping @Sendable () async -> HealthSummary) { healthSource = source }

    package func run() async throws {
        await cancelWhenGracefulShutdown { await self.publish() }
    }

    private func publish() async {
        let tick = outputs.traceFile != nil ? max(outputs.traceIntervalMs, 1) : 50
        var nextTable = outputs.tableInterval > 0 ? started + Double(outputs.tableInterval) : .infinity
        if outputs.tableInterval > 0 { _ = table.render(pipeline.snapshot(), at: Date().timeIntervalSince1970) }
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(tick))
            let now = ProcessInfo.processInfo.systemUptime
            if let trace = outputs.traceFile {
                let snapshot = pipeline.snapshot()
                let restarts = await healthSource().restarts
                trace.write(
                    Data(
                        "\(Int((now - started) * 1000)) \(snapshot.rx.received) \(snapshot.tx.delivered) \(restarts)\n"
                            .utf8
                    )
                )
            }
            if now >= nextTable {
                let snapshot = pipeline.snapshot()
                print(table.render(snapshot, at: Date().timeIntervalSince1970))
                fflush(nil)
                nextTable = now + Double(outputs.tableInterval)
                // -s: the probe's own counters beside librdkafka's statistics.
                let health = await healthSource()
                if outputs.statisticsFile != nil {
                    record(
                        "{\"fastcapa\":\(Accounting.json(snapshot, health: health)),"
                            + "\"xstats\":\(pipeline.extendedStatisticsJSON()),\"time\":\(Int(Date().timeIntervalSince1970))}"
                    )
                }
            }
        }
    }

    /// -s: librdkafka's statistics, one JSON object per line, as Fastcapa wrote
    /// them. The producer supervisors take them from the lcores' mailboxes.
    package func record(_ json: String) {
        outputs.statisticsFile?.write(Data((json + "\n").utf8))
    }

    /// After the tree stopped: what is left in the mailboxes.
    package func flushStatistics() {
        for json in pipeline.takeStatistics() { record(json) }
    }
}
