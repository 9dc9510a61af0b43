import FastcapaCapture
import FastcapaSupervision
import Foundation
import ServiceLifecycle
import Synchronization

/// Publishes the monitor's snapshots: the periodic table on standard output, the
/// probe's own counters and librdkafka's statistics JSON to the statistics file
/// (-s), and, when asked, a counter trace (one line per sample: elapsed ms,
/// received, delivered, restarts). It reads nothing but the snapshots.
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

    private let outputs: Outputs
    private var table = StatisticsTable()
    private let started = ProcessInfo.processInfo.systemUptime
    private let monitor = Mutex<PipelineMonitor?>(nil)
    /// Serialises writes to the statistics file (from this actor and the monitor's thread).
    private let fileLock = Mutex(())
    /// The counter trace covers the capture: it ends when the stop begins.
    private let tracing = Atomic<Bool>(true)

    package init(outputs: Outputs) {
        self.outputs = outputs
    }

    /// How often the monitor must sample for this service: the counter trace's interval, when there is one.
    package nonisolated var cadenceMs: Int { outputs.traceFile != nil ? max(outputs.traceIntervalMs, 1) : 100 }

    /// How often the monitor reads the drivers' extended statistics: for -s, at the table's interval.
    package nonisolated var extendedIntervalMs: Int? {
        outputs.statisticsFile != nil && outputs.tableInterval > 0 ? outputs.tableInterval * 1000 : nil
    }

    /// Where the snapshots come from (set once, before `run`).
    package nonisolated func read(from source: PipelineMonitor) { monitor.withLock { $0 = source } }

    package func run() async throws {
        await cancelWhenGracefulShutdown { await self.publish() }
    }

    private func publish() async {
        guard outputs.tableInterval > 0, let monitor = monitor.withLock({ $0 }) else {
            // Nothing to print: stay up until the group shuts down (a service that ends stops the probe).
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(1)) }
            return
        }
        _ = table.render(monitor.snapshot.capture, at: Date().timeIntervalSince1970)
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(outputs.tableInterval))
            guard !Task.isCancelled else { return }
            let snapshot = monitor.snapshot
            print(table.render(snapshot.capture, at: Date().timeIntervalSince1970))
            fflush(nil)
            // -s: the probe's own counters beside librdkafka's statistics.
            if outputs.statisticsFile != nil {
                record(
                    "{\"fastcapa\":\(Accounting.json(snapshot.capture, health: snapshot.health, final: false)),"
                        + "\"xstats\":\(snapshot.extendedJSON),\"time\":\(Int(Date().timeIntervalSince1970))}"
                )
            }
        }
    }

    /// The stop begins: the trace ends (receive stops on purpose from here).
    package nonisolated func stopTracing() { tracing.store(false, ordering: .relaxed) }

    /// -s: one JSON object per line (librdkafka's statistics as Fastcapa wrote
    /// them, handed over by the monitor as it takes them from the mailboxes).
    package nonisolated func record(_ json: String) {
        guard let file = outputs.statisticsFile else { return }
        fileLock.withLock { _ in file.write(Data((json + "\n").utf8)) }
    }

    /// --counter-trace: one line per snapshot (called on the monitor's thread),
    /// until `stopTracing`.
    package nonisolated func trace(_ snapshot: PipelineMonitor.Snapshot) {
        guard let trace = outputs.traceFile, tracing.load(ordering: .relaxed) else { return }
        let capture = snapshot.capture
        let elapsed = Int((snapshot.uptime - started) * 1000)
        trace.write(
            Data("\(elapsed) \(capture.rx.received) \(capture.tx.delivered) \(snapshot.health.restarts)\n".utf8)
        )
    }
}
