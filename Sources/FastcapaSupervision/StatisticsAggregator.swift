import FastcapaCapture
import Foundation

/// Samples the per-lcore counters and the ports' counters, and publishes them
/// with librdkafka's statistics (handed over by the producer supervisors): the periodic table on standard output,
/// librdkafka's JSON to the statistics file (-s), and, when asked, a counter
/// trace (one line per sample: elapsed ms, received, delivered, restarts).
public actor StatisticsAggregator {
    public struct Outputs: Sendable {
        public var tableInterval: Int
        public var statisticsFile: FileHandle?
        public var traceFile: FileHandle?
        public var traceIntervalMs: Int
        public init(tableInterval: Int, statisticsFile: FileHandle?, traceFile: FileHandle?, traceIntervalMs: Int) {
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

    public init(pipeline: CapturePipeline, outputs: Outputs) {
        self.pipeline = pipeline
        self.outputs = outputs
    }

    func setHealthSource(_ source: @escaping @Sendable () async -> HealthSummary) { healthSource = source }

    public func snapshot() -> CaptureSnapshot { pipeline.snapshot() }

    public func run() async {
        let tick = outputs.traceFile != nil ? max(outputs.traceIntervalMs, 1) : 50
        var nextTable = outputs.tableInterval > 0 ? started + Double(outputs.tableInterval) : .infinity
        if outputs.tableInterval > 0 { _ = table.render(pipeline.snapshot(), at: Date().timeIntervalSince1970) }
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(tick))
            let now = ProcessInfo.processInfo.systemUptime
            if let trace = outputs.traceFile {
                let snapshot = pipeline.snapshot()
                let line = "\(Int((now - started) * 1000)) \(snapshot.rx.received) \(snapshot.tx.delivered) \(await healthSource().restarts)\n"
                trace.write(Data(line.utf8))
            }
            if now >= nextTable {
                let snapshot = pipeline.snapshot()
                print(table.render(snapshot, at: Date().timeIntervalSince1970))
                fflush(nil)
                nextTable = now + Double(outputs.tableInterval)
                // -s: the probe's own counters beside librdkafka's statistics.
                let health = await healthSource()
                if outputs.statisticsFile != nil {
                    record("{\"fastcapa\":\(Accounting.json(snapshot, health: health)),"
                           + "\"xstats\":\(pipeline.extendedStatisticsJSON()),\"time\":\(Int(Date().timeIntervalSince1970))}")
                }
            }
        }
    }

    /// -s: librdkafka's statistics, one JSON object per line, as Fastcapa wrote
    /// them. The producer supervisors take them from the lcores' mailboxes.
    public func record(_ json: String) {
        outputs.statisticsFile?.write(Data((json + "\n").utf8))
    }

    /// After the tree stopped: what is left in the mailboxes.
    public func flushStatistics() {
        for json in pipeline.takeStatistics() { record(json) }
    }
}
