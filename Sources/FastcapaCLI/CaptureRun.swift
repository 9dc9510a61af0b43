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
    let options: CaptureOptions
    let ealArguments: [String]
    let logger: Logger

    func run() -> Int32 {
        let settings: CaptureSettings
        var properties: KafkaProperties
        do {
            settings = try options.settings()
            properties = try options.parsedProperties()
        } catch {
            FileHandle.standardError.write(Data("fastcapa: \(error)\n".utf8))
            return ExitStatus.usage
        }
        cfc_install_stop_signals(ExitStatus.forced)

        var broker: EmbeddedBroker?
        if !properties.hasBrokers {
            do {
                broker = try EmbeddedBroker(topics: [(settings.topic, Int32(options.embeddedPartitions))])
            } catch {
                logger.critical("\(error)")
                return ExitStatus.startFailed
            }
            properties.setGlobal("bootstrap.servers", broker!.bootstrapServers, origin: "embedded broker")
            logger.notice("no Kafka broker configured: using the embedded broker (librdkafka's mock cluster) at \(broker!.bootstrapServers), topic '\(settings.topic)' with \(options.embeddedPartitions) partition(s). Give -c FILE or -X bootstrap.servers=HOST:PORT for a real Kafka.")
            if let file = options.embeddedAddressFile {
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
            eal = try Eal.initialize(programName: CommandLine.arguments.first ?? "fastcapa", arguments: ealArguments)
        } catch {
            logger.critical("\(error)")
            return ExitStatus.startFailed
        }
        defer { eal.cleanup() }

        let pipeline: CapturePipeline
        do {
            pipeline = try CapturePipeline(settings: settings, kafka: properties, lcores: eal.workerLcores)
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

        mainLoop(pipeline)

        let reason = cfc_stop_signal() != 0 ? "signal \(cfc_stop_signal())" : "no packet for \(options.idleExit) s"
        logger.notice("stopping (\(reason)): draining rings and flushing Kafka for at most \(options.drainTimeout) s")
        let drained = pipeline.stopAndDrain(timeoutMs: options.drainTimeout * 1000)
        if !drained.ringsDrained || !drained.flushed {
            logger.warning("the drain timeout ran out: what was left is counted as drain_timeout or delivery_failed drops")
        }
        let final = pipeline.snapshot()
        print(Accounting.text(final))
        fflush(nil)
        return final.balances && final.inFlight == 0 ? ExitStatus.success : ExitStatus.accountingMismatch
    }

    /// The control plane's loop on the main lcore: never on the data path.
    private func mainLoop(_ pipeline: CapturePipeline) {
        var table = StatisticsTable()
        let start = Date().timeIntervalSince1970
        var nextStats = start + Double(options.statsInterval)
        var lastReceived: UInt64 = 0
        var lastPacketTime = start
        if options.statsInterval > 0 {
            _ = table.render(pipeline.snapshot(), at: start)
        }
        while !cfc_stop_requested() {
            usleep(50_000)
            let now = Date().timeIntervalSince1970
            if options.statsInterval > 0 && now >= nextStats {
                print(table.render(pipeline.snapshot(), at: now))
                fflush(nil)
                nextStats = now + Double(options.statsInterval)
            }
            if options.idleExit > 0 {
                let received = pipeline.snapshot().rx.received
                if received != lastReceived {
                    lastReceived = received
                    lastPacketTime = now
                } else if now - lastPacketTime >= Double(options.idleExit) {
                    break
                }
            }
        }
    }
}
