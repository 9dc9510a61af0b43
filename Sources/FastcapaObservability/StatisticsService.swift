import FastcapaCapture
import FastcapaSupervision
import Foundation
import ServiceLifecycle
import Synchronization

/// Publishes the monitor's snapshots: the periodic table on standard output, the
/// probe's own counters and librdkafka's statistics JSON to the statistics file
/// (-s), and, when asked, a counter trace (one line per sample: elapsed ms,
/// received, delivered, restarts). It reads nothing but the snapshots.
///
/// Both files are opened for appending (`O_APPEND`), so logrotate's
/// `copytruncate` leaves no hole, and opened again on SIGHUP (`reopenFiles`),
/// so that its default (rename, then `postrotate` sends SIGHUP) works too.
package actor StatisticsService: Service {
    package struct Outputs: Sendable {
        package var tableInterval: Int
        /// The -s file's path, nil without one.
        package var statisticsPath: String?
        /// The --counter-trace file's path, nil without one.
        package var tracePath: String?
        package var traceIntervalMs: Int
        package init(tableInterval: Int, statisticsPath: String?, tracePath: String?, traceIntervalMs: Int) {
            self.tableInterval = tableInterval
            self.statisticsPath = statisticsPath
            self.tracePath = tracePath
            self.traceIntervalMs = traceIntervalMs
        }
    }

    /// The open files; swapped by `reopenFiles`.
    private struct Files {
        var statistics: FileHandle?
        var trace: FileHandle?
    }

    private let outputs: Outputs
    private var table = StatisticsTable()
    private let started = ProcessInfo.processInfo.systemUptime
    private let monitor = Mutex<PipelineMonitor?>(nil)
    /// Serialises writes to the files (from this actor and the monitor's thread) and their reopening.
    private let files: Mutex<Files>
    /// The counter trace covers the capture: it ends when the stop begins.
    private let tracing = Atomic<Bool>(true)

    /// Opens the files; throws a message naming the one that cannot be opened.
    package init(outputs: Outputs) throws(OpenError) {
        self.outputs = outputs
        files = Mutex(
            Files(
                statistics: try outputs.statisticsPath.map { path throws(OpenError) in
                    try Self.openForAppending(path, what: "statistics file (-s)")
                },
                trace: try outputs.tracePath.map { path throws(OpenError) in
                    try Self.openForAppending(path, what: "counter trace (--counter-trace)")
                }
            )
        )
    }

    package struct OpenError: Error, CustomStringConvertible {
        package var description: String
    }

    /// `path` for appending (created 0640 when missing; every write at its end).
    package static func openForAppending(_ path: String, what: String) throws(OpenError) -> FileHandle {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw OpenError(
                description:
                    "cannot open the \(what) '\(path)' for appending (\(String(cString: strerror(errno)))). Check that its folder exists and is writable."
            )
        }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// SIGHUP: opens both files again by their paths (after logrotate renamed
    /// them) and writes to the new ones from the next line on. A file that
    /// cannot be opened keeps the old one; the messages say which.
    package nonisolated func reopenFiles() -> [String] {
        var problems: [String] = []
        files.withLock { files in
            do throws(OpenError) {
                if let path = outputs.statisticsPath {
                    files.statistics = try Self.openForAppending(path, what: "statistics file (-s)")
                }
            } catch { problems.append(error.description) }
            do throws(OpenError) {
                if let path = outputs.tracePath {
                    files.trace = try Self.openForAppending(path, what: "counter trace (--counter-trace)")
                }
            } catch { problems.append(error.description) }
        }
        return problems
    }

    /// How often the monitor must sample for this service: the counter trace's interval, when there is one.
    package nonisolated var cadenceMs: Int { outputs.tracePath != nil ? max(outputs.traceIntervalMs, 1) : 100 }

    /// How often the monitor reads the drivers' extended statistics: for -s, at the table's interval.
    package nonisolated var extendedIntervalMs: Int? {
        outputs.statisticsPath != nil && outputs.tableInterval > 0 ? outputs.tableInterval * 1000 : nil
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
            if outputs.statisticsPath != nil {
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
        guard outputs.statisticsPath != nil else { return }
        files.withLock { $0.statistics?.write(Data((json + "\n").utf8)) }
    }

    /// --counter-trace: one line per snapshot (called on the monitor's thread),
    /// until `stopTracing`.
    package nonisolated func trace(_ snapshot: PipelineMonitor.Snapshot) {
        guard outputs.tracePath != nil, tracing.load(ordering: .relaxed) else { return }
        let capture = snapshot.capture
        let elapsed = Int((snapshot.uptime - started) * 1000)
        let line = Data("\(elapsed) \(capture.rx.received) \(capture.tx.delivered) \(snapshot.health.restarts)\n".utf8)
        files.withLock { $0.trace?.write(line) }
    }
}
