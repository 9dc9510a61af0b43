import FastcapaCapture
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
/// Each is written by a `LineWriter` of its own: a line is queued, never
/// written on the sampler's thread, and a file that cannot take it (a full
/// disk) loses it, counted and reported, while capture goes on.
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

    private let outputs: Outputs
    private var table = StatisticsTable()
    private let started = ProcessInfo.processInfo.systemUptime
    private let monitor = Mutex<PipelineMonitor?>(nil)
    /// The -s file's writer, nil without one.
    private let statisticsFile: LineWriter?
    /// The --counter-trace file's writer, nil without one.
    private let traceFile: LineWriter?
    /// The counter trace covers the capture: it ends when the stop begins.
    private let tracing = Atomic<Bool>(true)

    static let statisticsRole = "statistics file (-s)"
    static let traceRole = "counter trace (--counter-trace)"

    /// Opens the files; throws a message naming the one that cannot be opened.
    /// - Parameter onProblem: told, on a writer's thread, when a file starts losing lines and when it takes them again.
    package init(outputs: Outputs, onProblem: @escaping @Sendable (String) -> Void) throws(OpenError) {
        self.outputs = outputs
        func writer(_ path: String?, _ role: String) throws(OpenError) -> LineWriter? {
            guard let path else { return nil }
            let descriptor = try Self.openForAppending(path, what: role)
            return LineWriter(descriptor: descriptor, name: "\(role) '\(path)'", onProblem: onProblem)
        }
        statisticsFile = try writer(outputs.statisticsPath, Self.statisticsRole)
        do {
            traceFile = try writer(outputs.tracePath, Self.traceRole)
        } catch {
            statisticsFile?.close()
            throw error
        }
    }

    package struct OpenError: Error, CustomStringConvertible {
        package var description: String
    }

    /// `path` for appending (created 0640 when missing; every write at its end).
    /// At start a FIFO waits for its reader, as a shell redirection does.
    package static func openForAppending(_ path: String, what: String) throws(OpenError) -> Int32 {
        switch LineWriter.open(path, waitForReader: true) {
        case .success(let fd): return fd
        case .failure(let error):
            throw OpenError(
                description:
                    "cannot open the \(what) '\(path)' for appending (\(error.reason)). Check that its folder exists and is writable."
            )
        }
    }

    /// SIGHUP: opens both files again by their paths (after logrotate renamed
    /// them), each on its writer's thread, which writes to the new one from the
    /// next line on. Returns at once, so that a FIFO without a reader or a hung
    /// mount never holds the control plane (and the stop it watches for) up; a
    /// file that cannot be opened keeps the old one, and its writer says so.
    package nonisolated func reopenFiles() {
        if let path = outputs.statisticsPath { statisticsFile?.reopen(path: path) }
        if let path = outputs.tracePath { traceFile?.reopen(path: path) }
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
                        + "\"ports\":\(Self.linksJSON(snapshot.capture.links)),"
                        + "\"xstats\":\(snapshot.extendedJSON),\"time\":\(Int(Date().timeIntervalSince1970))}"
                )
            }
        }
    }

    /// Each port's link for the -s file: `[{"port":0,"link_up":true,"speed_mbps":10000,"idle_seconds":0.1}]`
    /// (`speed_mbps` null when unknown).
    static func linksJSON(_ links: [FastcapaCapture.Port.Link]) -> String {
        var objects: [String] = []
        for link in links {
            let speed = link.speedMbps.map { "\($0)" } ?? "null"
            let idle = (link.idleSeconds * 1000).rounded() / 1000
            objects.append(
                "{\"port\":\(link.port),\"link_up\":\(link.up),\"speed_mbps\":\(speed),\"idle_seconds\":\(idle)}"
            )
        }
        return "[" + objects.joined(separator: ",") + "]"
    }

    /// The stop begins: the trace ends (receive stops on purpose from here).
    package nonisolated func stopTracing() { tracing.store(false, ordering: .relaxed) }

    /// -s: one JSON object per line (librdkafka's statistics as Fastcapa wrote
    /// them, handed over by the monitor as it takes them from the mailboxes).
    package nonisolated func record(_ json: String) {
        guard outputs.statisticsPath != nil else { return }
        statisticsFile?.append(json)
    }

    /// --counter-trace: one line per snapshot (called on the monitor's thread),
    /// until `stopTracing`.
    package nonisolated func trace(_ snapshot: PipelineMonitor.Snapshot) {
        guard outputs.tracePath != nil, tracing.load(ordering: .relaxed) else { return }
        let capture = snapshot.capture
        let elapsed = Int((snapshot.uptime - started) * 1000)
        traceFile?.append("\(elapsed) \(capture.rx.received) \(capture.tx.delivered) \(snapshot.health.restarts)")
    }

    /// Each file's lines written and lost so far (the metrics), by its role: `statistics`, `trace`.
    package nonisolated var outputCounts: [(file: String, counts: LineWriter.Counts)] {
        [("statistics", statisticsFile), ("trace", traceFile)].compactMap { file, writer in
            writer.map { (file, $0.counts) }
        }
    }

    /// The end: writes what is queued and closes both files, waiting at most
    /// `timeout` seconds for both together (what is left of the stop's bound);
    /// returns a line for each file that lost lines.
    package nonisolated func closeFiles(timeout: Double) -> [String] {
        let writers = [statisticsFile, traceFile].compactMap { $0 }
        for writer in writers { writer.finish() }
        let deadline = ProcessInfo.processInfo.systemUptime + timeout
        return writers.compactMap { writer in
            let complete = writer.close(timeout: deadline - ProcessInfo.processInfo.systemUptime)
            let counts = writer.counts
            guard counts.lost > 0 || !complete else { return nil }
            return
                "the \(writer.name) lost \(counts.lost) lines: \(counts.failed) to write errors, \(counts.overflowed) to a full queue, \(counts.unwritten) still queued at the stop"
                + (complete ? "" : "; it still had not taken the last lines when the stop's time for the files ran out")
        }
    }
}
