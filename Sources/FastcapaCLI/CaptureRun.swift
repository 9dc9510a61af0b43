import CDPDK
import FastcapaCapture
import FastcapaKafka
import Foundation
import FastcapaSupervision
import Logging
import Metrics
import Prometheus

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

/// Runs the capture: embedded broker (if no broker is configured) → EAL →
/// pipeline → supervisor tree (until a stop) → drain → accounting.
struct CaptureRun {
    let configuration: ResolvedConfiguration
    let testingFaultSignals: Bool
    /// Reads the configuration again (SIGHUP).
    let reloadConfiguration: @Sendable () throws -> ResolvedConfiguration
    let logger: Logger

    private var settings: CaptureSettings { configuration.settings }

    func run() -> Int32 {
        // Before any thread starts: threads inherit the signal mask.
        cfc_install_stop_signals(ExitStatus.forced)
        cfc_install_reload_signal()
        if testingFaultSignals { cfc_install_fault_signal() }

        var properties = configuration.kafka
        let statisticsFile: FileHandle?
        let traceFile: FileHandle?
        do {
            statisticsFile = try configuration.statsFile.map { try Self.openForAppending($0, what: "statistics file (-s)") }
            traceFile = try configuration.counterTrace.map { try Self.openForAppending($0, what: "counter trace (--counter-trace)") }
        } catch {
            logger.critical("\(error)")
            return ExitStatus.usage
        }
        properties = withRunDefaults(properties, embeddedBroker: nil)

        var broker: EmbeddedBroker?
        if !properties.hasBrokers {
            do {
                broker = try EmbeddedBroker(topics: [(settings.topic, Int32(configuration.embeddedPartitions))])
            } catch {
                logger.critical("\(error)")
                return ExitStatus.startFailed
            }
            properties = withRunDefaults(properties, embeddedBroker: broker)
            logger.notice("no Kafka broker configured: using the embedded broker (librdkafka's mock cluster) at \(broker!.bootstrapServers), topic '\(settings.topic)' with \(configuration.embeddedPartitions) partition(s). Give -c FILE or -X bootstrap.servers=HOST:PORT for a real Kafka.")
            if let file = configuration.embeddedAddressFile {
                do {
                    try Data((broker!.bootstrapServers + "\n").utf8).write(to: URL(fileURLWithPath: file))
                } catch {
                    logger.error("cannot write the embedded broker's address to \(file): \(error)")
                }
            }
        }

        let eal: EalRuntime
        do {
            eal = try Eal.initialize(programName: CommandLine.arguments.first ?? "fastcapa", arguments: configuration.eal)
        } catch {
            logger.critical("\(error)")
            return ExitStatus.startFailed
        }
        defer { eal.cleanup() }
        do {
            let cpus = try eal.confineControlThreads(configuration.controlCores)
            logger.info("control threads (librdkafka, supervisors) on CPUs \(ControlCores.formatList(cpus))")
        } catch {
            logger.critical("\(error)")
            return ExitStatus.startFailed
        }

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
        let supervisor = makeSupervisor(pipeline, kafka: properties, broker: broker, statisticsFile: statisticsFile, traceFile: traceFile)
        var metricsServer: MetricsServer?
        if let address = configuration.metricsAddress {
            do {
                metricsServer = try startMetricsServer(address, pipeline: pipeline, supervisor: supervisor)
            } catch {
                logger.critical("cannot serve metrics at \(address): \(error). Choose a free HOST:PORT for --metrics-address.")
                return ExitStatus.startFailed
            }
        }
        defer { metricsServer?.stop() }
        do {
            try pipeline.start()
        } catch {
            logger.critical("\(error)")
            return ExitStatus.startFailed
        }

        SystemdNotify.send("READY=1\nSTATUS=capturing")
        let reason = waitForAsync { await supervisor.run() }
        SystemdNotify.send("STOPPING=1\nSTATUS=draining")

        logger.notice("stopping (\(reason)): draining rings and flushing Kafka for at most \(configuration.drainTimeout) s")
        let drained = pipeline.stopAndDrain(timeoutMs: configuration.drainTimeout * 1000)
        if !drained.ringsDrained || !drained.flushed {
            logger.warning("the drain timeout ran out: what was left is counted as drain_timeout or delivery_failed drops")
        }
        waitForAsync { await supervisor.statistics.flushStatistics() }
        let health = waitForAsync { await supervisor.health() }
        let final = pipeline.snapshot()
        print(Accounting.text(final, health: health))
        fflush(nil)
        withExtendedLifetime(broker) {}
        return final.balances && final.inFlight == 0 ? ExitStatus.success : ExitStatus.accountingMismatch
    }

    private func makeSupervisor(
        _ pipeline: CapturePipeline, kafka: KafkaProperties, broker: EmbeddedBroker?,
        statisticsFile: FileHandle?, traceFile: FileHandle?
    ) -> CaptureSupervisor {
        var policy = ProducerHealth.Policy()
        policy.backoffBase = Double(configuration.restartBackoffMs) / 1000
        policy.backoffCap = Double(configuration.restartBackoffMaxSeconds)
        policy.maxRestarts = configuration.maxRestartsPerMinute
        policy.restartWindow = 60
        policy.stallSeconds = Double(configuration.stallSeconds)
        policy.slowRoundTripMs = Double(configuration.slowRoundTripMs)
        let running = configuration
        let reload = reloadConfiguration
        let run = self
        return CaptureSupervisor(
            pipeline: pipeline, kafka: kafka,
            options: .init(idleExit: configuration.idleExit, policy: policy, testingFaultSignals: testingFaultSignals),
            outputs: .init(tableInterval: configuration.statsInterval, statisticsFile: statisticsFile, traceFile: traceFile,
                           traceIntervalMs: configuration.counterTraceIntervalMs),
            logger: logger,
            reload: {
                let next = try reload()
                let needsRestart = Setting.all.map(\.key).filter { key in
                    !Setting.liveKeys.contains(key) && Setting.byKey[key]!.read(next) != Setting.byKey[key]!.read(running)
                } + (next.eal != running.eal ? ["eal"] : [])
                return .init(kafka: run.withRunDefaults(next.kafka, embeddedBroker: broker),
                             live: LiveSettings(next.settings), needsRestart: needsRestart)
            })
    }

    /// /metrics and /health, on their own event-loop thread.
    private func startMetricsServer(_ address: String, pipeline: CapturePipeline, supervisor: CaptureSupervisor) throws -> MetricsServer {
        let (host, port) = try MetricsServer.parse(address)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let exporter = MetricsExporter(pipeline: pipeline, producers: supervisor.producers, registry: registry)
        let server = try MetricsServer(
            host: host, port: port, metrics: { await exporter.render() }, health: { await supervisor.health() })
        logger.notice("serving metrics at http://\(server.address)/metrics and health at http://\(server.address)/health")
        return server
    }

    /// Properties this run adds: librdkafka's statistics (for health, and -s at
    /// the stats interval), the embedded broker's address.
    private func withRunDefaults(_ properties: KafkaProperties, embeddedBroker: EmbeddedBroker?) -> KafkaProperties {
        var properties = properties
        if properties.globalValue("statistics.interval.ms") == nil {
            let seconds = configuration.statsFile != nil && configuration.statsInterval > 0 ? configuration.statsInterval : 1
            properties.setGlobal("statistics.interval.ms", "\(seconds * 1000)", origin: "fastcapa's health checks")
        }
        if let embeddedBroker, !properties.hasBrokers {
            properties.setGlobal("bootstrap.servers", embeddedBroker.bootstrapServers, origin: "embedded broker")
        }
        return properties
    }

    private static func openForAppending(_ path: String, what: String) throws -> FileHandle {
        guard FileManager.default.fileExists(atPath: path) || FileManager.default.createFile(atPath: path, contents: nil),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw SettingError("cannot open the \(what) '\(path)' for appending. Check that its folder exists and is writable.")
        }
        handle.seekToEndOfFile()
        return handle
    }
}
