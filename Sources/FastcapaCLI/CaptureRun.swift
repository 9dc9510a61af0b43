import CDPDK
import FastcapaCapture
import FastcapaKafka
import Foundation
import Logging

/// Exit statuses of the capture command (documented in the README).
public enum ExitStatus {
    public static let success: Int32 = 0
    /// The probe could not start: EAL, ports, memory, Kafka producers.
    public static let startFailed: Int32 = 1
    /// The accounting did not balance: a bug, please report it.
    public static let accountingMismatch: Int32 = 2
    /// A second SIGINT/SIGTERM cut the drain short.
    public static let forced: Int32 = 3
    /// Bad command line or configuration (ArgumentParser's usage status).
    public static let usage: Int32 = 64
}

/// Runs the capture: EAL → embedded broker (if no broker is configured) →
/// pipeline → main loop (stats, signals) → drain → accounting.
struct CaptureRun {
    let configuration: ResolvedConfiguration
    let logger: Logger

    private var settings: CaptureSettings { configuration.settings }

    func run() -> Int32 {
        var properties = configuration.kafka
        cfc_install_stop_signals(ExitStatus.forced)

        var statisticsFile: FileHandle?
        if let path = configuration.statsFile {
            guard FileManager.default.fileExists(atPath: path) || FileManager.default.createFile(atPath: path, contents: nil),
                  let handle = FileHandle(forWritingAtPath: path) else {
                logger.critical("cannot open the statistics file '\(path)' (-s) for appending. Check that its folder exists and is writable.")
                return ExitStatus.startFailed
            }
            handle.seekToEndOfFile()
            statisticsFile = handle
            if properties.globalValue("statistics.interval.ms") == nil {
                let interval = configuration.statsInterval > 0 ? configuration.statsInterval : 5
                properties.setGlobal("statistics.interval.ms", "\(interval * 1000)", origin: "-s")
            }
        }

        var broker: EmbeddedBroker?
        if !properties.hasBrokers {
            do {
                broker = try EmbeddedBroker(topics: [(settings.topic, Int32(configuration.embeddedPartitions))])
            } catch {
                logger.critical("\(error)")
                return ExitStatus.startFailed
            }
            properties.setGlobal("bootstrap.servers", broker!.bootstrapServers, origin: "embedded broker")
            logger.notice("no Kafka broker configured: using the embedded broker (librdkafka's mock cluster) at \(broker!.bootstrapServers), topic '\(settings.topic)' with \(configuration.embeddedPartitions) partition(s). Give -c FILE or -X bootstrap.servers=HOST:PORT for a real Kafka.")
            if let file = configuration.embeddedAddressFile {
                do {
                    try Data((broker!.bootstrapServers + "\n").utf8).write(to: URL(fileURLWithPath: file))
                } catch {
                    logger.error("cannot write the embedded broker's address to \(file): \(error)")
                }
            }
        }
        _ = broker // kept alive until the run ends

        let eal: EalRuntime
        do {
            eal = try Eal.initialize(programName: CommandLine.arguments.first ?? "fastcapa", arguments: configuration.eal)
        } catch {
            logger.critical("\(error)")
            return ExitStatus.startFailed
        }
        defer { eal.cleanup() }

        let pipeline: CapturePipeline
        do {
            pipeline = try CapturePipeline(
                settings: settings, kafka: properties, lcores: eal.workerLcores, statistics: statisticsFile != nil)
        } catch {
            logger.critical("\(error)")
            return ExitStatus.startFailed
        }
        defer { pipeline.release() }
        logger.info("capturing", metadata: [
            "ports": "\(pipeline.ports.map { "\($0.id) (\($0.driver))" }.joined(separator: ", "))",
            "rx_queues": "\(settings.rxQueues)", "tx_workers": "\(pipeline.transmitWorkers.count)",
            "ring_size": "\(settings.ringSize)", "mbufs": "\(pipeline.mempoolSize)", "topic": "\(settings.topic)",
            "capture_time": "\(pipeline.deviceTimestamps ? "device timestamps" : "wall clock per burst")",
        ])
        do {
            try pipeline.start()
        } catch {
            logger.critical("\(error)")
            return ExitStatus.startFailed
        }

        mainLoop(pipeline, statisticsFile: statisticsFile)

        let reason = cfc_stop_signal() != 0 ? "signal \(cfc_stop_signal())" : "no packet for \(configuration.idleExit) s"
        logger.notice("stopping (\(reason)): draining rings and flushing Kafka for at most \(configuration.drainTimeout) s")
        let drained = pipeline.stopAndDrain(timeoutMs: configuration.drainTimeout * 1000)
        Self.appendStatistics(pipeline, to: statisticsFile)
        if !drained.ringsDrained || !drained.flushed {
            logger.warning("the drain timeout ran out: what was left is counted as drain_timeout or delivery_failed drops")
        }
        let final = pipeline.snapshot()
        print(Accounting.text(final))
        fflush(nil)
        return final.balances && final.inFlight == 0 ? ExitStatus.success : ExitStatus.accountingMismatch
    }

    /// The control plane's loop on the main lcore: never on the data path.
    private func mainLoop(_ pipeline: CapturePipeline, statisticsFile: FileHandle?) {
        var table = StatisticsTable()
        let start = Date().timeIntervalSince1970
        var nextStats = start + Double(configuration.statsInterval)
        var lastReceived: UInt64 = 0
        var lastPacketTime = start
        if configuration.statsInterval > 0 {
            _ = table.render(pipeline.snapshot(), at: start)
        }
        while !cfc_stop_requested() {
            usleep(50_000)
            Self.appendStatistics(pipeline, to: statisticsFile)
            let now = Date().timeIntervalSince1970
            if configuration.statsInterval > 0 && now >= nextStats {
                print(table.render(pipeline.snapshot(), at: now))
                fflush(nil)
                nextStats = now + Double(configuration.statsInterval)
            }
            if configuration.idleExit > 0 {
                let received = pipeline.snapshot().rx.received
                if received != lastReceived {
                    lastReceived = received
                    lastPacketTime = now
                } else if now - lastPacketTime >= Double(configuration.idleExit) {
                    break
                }
            }
        }
    }

    /// `-s`: librdkafka's statistics, one JSON object per line, as Fastcapa wrote them.
    private static func appendStatistics(_ pipeline: CapturePipeline, to file: FileHandle?) {
        guard let file else { return }
        for json in pipeline.takeStatistics() {
            file.write(Data((json + "\n").utf8))
        }
    }
}
