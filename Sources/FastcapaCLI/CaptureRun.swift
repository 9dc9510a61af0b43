import FastcapaCapture
import FastcapaKafka
import FastcapaKafkaTools
import FastcapaObservability
import FastcapaSupervision
import Foundation
import Logging
import Metrics
import Prometheus

/// Runs the capture: embedded broker (if no broker is configured) → EAL →
/// pipeline → supervisor tree (until a stop) → drain → accounting.
struct CaptureRun {
    let configuration: ResolvedConfiguration
    /// The test seams (none in a release build).
    let testing: TestingHooks
    /// Reads the configuration again (SIGHUP).
    let reloadConfiguration: @Sendable () throws -> ResolvedConfiguration
    let logger: Logger

    private var settings: CaptureSettings { configuration.settings }

    /// A stop ends within the drain's deadline (--drain-timeout after it was
    /// asked for) + this: the purge's grace (3 s), then the output files, then
    /// the release, which keeps `releaseReserveMs` of it.
    static let stopMarginMs = 5000
    static let releaseReserveMs = 1000
    /// The output files' wait at the stop: at most this, at least the minimum (for
    /// lines a working file takes at once) when nothing is left of the bound.
    static let filesSeconds = 2.0
    static let filesMinimumSeconds = 0.2

    /// A start-up step failed: the probe cannot start (exit 1), or an option is
    /// unusable (exit 64).
    struct StartFailure: Error, CustomStringConvertible {
        var description: String
        var status: Int32
    }

    func run() -> Int32 {
        do {
            return try capture()
        } catch let failure as StartFailure {
            logger.critical("\(failure.description)")
            return failure.status
        } catch {
            logger.critical("\(error)")
            return ExitStatus.startFailed
        }
    }

    private func capture() throws -> Int32 {
        logger.info("\(FastcapaVersion.description) starting", metadata: ["pid": "\(getpid())"])
        // Before librdkafka's threads allocate: their heaps keep what they free (HeapThresholds).
        if !HeapThresholds.apply() {
            logger.info("heap thresholds: glibc's own (GLIBC_TUNABLES sets the allocator's, or mallopt refused them)")
        }
        // Before any thread starts: threads inherit the signal mask.
        let signals = try ProcessSignals(faultSignal: testing.faultSignals)
        // -s and --counter-trace, opened before EAL starts so that a bad path costs nothing.
        let statistics: StatisticsService
        do {
            statistics = try StatisticsService(
                outputs: .init(
                    tableInterval: configuration.statsInterval,
                    statisticsPath: configuration.statsFile,
                    tracePath: configuration.counterTrace,
                    traceIntervalMs: configuration.counterTraceIntervalMs
                ),
                onProblem: { [logger] problem in logger.warning("\(problem)") }
            )
        } catch {
            throw StartFailure(description: error.description, status: ExitStatus.usage)
        }
        let broker = try startEmbeddedBrokerIfNeeded()
        let properties = withRunDefaults(configuration.kafka, embeddedBroker: broker)

        let eal = try Eal.initialize(
            programName: CommandLine.arguments.first ?? "fastcapa",
            arguments: configuration.eal
        )
        defer { eal.cleanup() }
        signals.beforeForcedExit { eal.removeRuntimeFiles() }
        logger.info("\(eal.enablePacketDump())")
        let cpus = try eal.confineControlThreads(configuration.controlCores)
        logger.info("control threads (librdkafka, supervisors) on CPUs \(ControlCores.formatList(cpus))")

        // After the pipeline is released (defers run in reverse): every filter program loaded was freed once.
        defer {
            let loaded = PacketFilter.loadedCount.load(ordering: .relaxed)
            let freed = PacketFilter.destroyedCount.load(ordering: .relaxed)
            if loaded > 0 { logger.info("capture filter programs: \(loaded) loaded, \(freed) freed") }
        }
        let pipeline = try CapturePipeline(
            settings: settings,
            kafka: properties,
            lcores: eal.workerLcores,
            cpus: eal.processCPUs,
            testing: testing
        )
        defer { pipeline.release() }
        try signals.verifyHandlers()
        logger.info(
            "capturing",
            metadata: [
                "ports": "\(pipeline.ports.map { "\($0.id) (\($0.driver))" }.joined(separator: ", "))",
                "rx_queues": "\(settings.rxQueues)", "tx_workers": "\(pipeline.transmitWorkers.count)",
                "ring_size": "\(settings.ringSize)",
                "mbufs":
                    "\(pipeline.mempools.map { "\($0.mbufs) × \($0.dataRoom) B (\($0.bytes >> 20) MiB)" }.joined(separator: ", "))",
                "topic": "\(settings.topics.joined(separator: ", "))",
                "capture_time": "\(pipeline.captureTimes.map(\.description).joined(separator: "; "))",
                "record_time": "\(settings.recordTime.summary)",
            ]
        )
        for line in pipeline.workerLayout { logger.info("\(line)") }
        if pipeline.replayWaits {
            logger.info(
                "ring-full: wait, since every port replays capture files (a file read slower loses nothing; --ring-full drop drops instead)"
            )
        }
        for port in pipeline.ports {
            for warning in port.path.warnings { logger.warning("\(warning)") }
            if !port.path.interfaces.isEmpty && !port.kernelDropsVisible {
                logger.warning(
                    "port \(port.id) (\(port.driver)): the kernel's drops on this port's sockets cannot be read; frames the kernel drops before the probe reads them are counted nowhere"
                )
            }
        }
        // Passed to a call, not kept in this scope: a reference here would keep the program alive past a SIGHUP's swap.
        logFilter(pipeline.filter.current, logger)
        for line in pipeline.volumeReductionLines { logger.info("\(line)") }
        // `systemctl status`: the rates and health, then the drain (and the stop timeout extended to its bound).
        let systemd = SystemdStatus(report: { [logger] problem, text in
            logger.log(level: problem ? .error : .notice, "\(text)")
        })
        if let interval = systemd.watchdogInterval {
            logger.info("systemd's watchdog: WATCHDOG=1 every \(interval) s while every worker lcore turns its loop")
        }
        // The one owner of the pipeline's and the NICs' samples; everything else reads its snapshots.
        let monitor = PipelineMonitor(
            pipeline: pipeline,
            embeddedBroker: broker != nil,
            cadenceMs: statistics.cadenceMs,
            extendedIntervalMs: statistics.extendedIntervalMs,
            onStatistics: { _, json in statistics.record(json) },
            onSample: { snapshot in
                statistics.trace(snapshot)
                systemd.sample(snapshot)
            }
        )
        statistics.read(from: monitor)
        let supervisor = makeSupervisor(
            pipeline,
            monitor: monitor,
            kafka: properties,
            broker: broker,
            signals: signals,
            statistics: statistics
        )
        monitor.start()
        defer { monitor.stop() }  // (on a start failure below; after the drain it has stopped already)
        let metricsServer = try configuration.metricsAddress.map {
            try startMetricsServer(
                $0,
                pipeline: pipeline,
                monitor: monitor,
                statistics: statistics,
                supervisor: supervisor,
                embeddedBroker: broker != nil
            )
        }
        defer { metricsServer?.stop() }
        try pipeline.start()

        systemd.ready()
        let reason = waitForAsync { await supervisor.run() }
        // The stop's bound (Operations.md), from the moment it was asked for: the drain's deadline + 5 s.
        // (The supervisor set the deadline as it returned; the first one set wins.)
        pipeline.requestStop(deadline: CapturePipeline.nowMillis() + configuration.drainTimeout * 1000)
        let stopEnd = pipeline.stopDeadlineMillis + Self.stopMarginMs
        func secondsLeft() -> Double { Double(stopEnd - CapturePipeline.nowMillis()) / 1000 }
        // A swap under way (a load and a grace period) comes out of the drain's time.
        supervisor.waitForFilterSwap()
        // From here a stop signal is the second one: it cuts the drain short.
        signals.stopping()
        statistics.stopTracing()
        systemd.stopping(reason: "\(reason)", bound: secondsLeft())

        logger.notice(
            "stopping (\(reason)): draining rings and flushing Kafka for at most \(configuration.drainTimeout) s"
        )
        // By the deadline the supervisor set; librdkafka's purge reports until 3 s after it at most.
        let drained = pipeline.stopAndDrain(timeoutMs: configuration.drainTimeout * 1000)
        if !drained.ringsDrained || !drained.flushed {
            logger.warning(
                "the drain timeout ran out: what was left is counted as drain_timeout or delivery_failed drops"
            )
        }
        if drained.flushed && drained.bundleBuffersAstray != 0 {
            logger.error(
                "bundle pool: \(drained.bundleBuffersAstray) buffers not handed back after every report was served (negative: handed back twice); the accounting below says whether packets were miscounted too"
            )
        }
        if testing.miscountDelivery { pipeline.testingMiscountOneDelivery() }
        // The last sample: after it nothing reads the pipeline, which the defers release.
        let final = monitor.stop()
        // The files get what is left of the bound, less what releasing the ports, rings and EAL needs.
        let filesTimeout = min(
            Self.filesSeconds,
            max(secondsLeft() - Double(Self.releaseReserveMs) / 1000, Self.filesMinimumSeconds)
        )
        for problem in statistics.closeFiles(timeout: filesTimeout) { logger.warning("\(problem)") }
        print(Accounting.text(final.capture, health: final.health))
        fflush(nil)
        withExtendedLifetime(broker) {}
        return final.capture.balances && final.capture.inFlight == 0
            ? ExitStatus.success : ExitStatus.accountingMismatch
    }

    /// With no broker configured, librdkafka's mock cluster in this process (a warning: nothing captured
    /// leaves the process), or, with `require-broker`, a refusal to start.
    /// The start line of the capture filter: a warning when the JIT was refused (it says why).
    private func logFilter(_ filter: PacketFilter?, _ logger: Logger) {
        if let filter, filter.jitRefusal != nil {
            logger.warning("capture filter: \(filter.summary)")
        } else {
            logger.info("capture filter: \(filter?.summary ?? "none (every packet is captured)")")
        }
    }

    private func startEmbeddedBrokerIfNeeded() throws -> EmbeddedBroker? {
        if let problem = configuration.missingRequiredBroker {
            throw StartFailure(description: problem + ".", status: ExitStatus.usage)
        }
        guard !configuration.kafka.hasBrokers else { return nil }
        let partitions = Int32(configuration.embeddedPartitions)
        let broker = try EmbeddedBroker(topics: settings.topics.map { ($0, partitions) })
        logger.warning(
            "no Kafka broker configured: publishing to the embedded broker (librdkafka's mock cluster, in this process's memory only) at \(broker.bootstrapServers), topic '\(settings.topics.joined(separator: "', '"))' with \(configuration.embeddedPartitions) partition(s); /health says degraded. Give -c FILE, kafka: bootstrap.servers in the config file or -X bootstrap.servers=HOST:PORT for a real Kafka, and --require-broker to refuse to start without one."
        )
        if let file = configuration.embeddedAddressFile {
            do {
                try Data((broker.bootstrapServers + "\n").utf8).write(to: URL(fileURLWithPath: file))
            } catch {
                logger.error("cannot write the embedded broker's address to \(file): \(error)")
            }
        }
        return broker
    }

    private func makeSupervisor(
        _ pipeline: CapturePipeline,
        monitor: PipelineMonitor,
        kafka: KafkaProperties,
        broker: EmbeddedBroker?,
        signals: ProcessSignals,
        statistics: StatisticsService
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
        var injectFault: (@Sendable (ProducerGeneration) -> Void)?
        #if FASTCAPA_TESTING_HOOKS
        if testing.faultSignals {
            injectFault = { generation in
                generation.injectFatalError(reason: "injected by SIGUSR2 (--testing-fault-signals)")
            }
        }
        #endif
        return CaptureSupervisor(
            pipeline: pipeline,
            monitor: monitor,
            kafka: kafka,
            options: .init(
                idleExit: configuration.idleExit,
                policy: policy,
                drainTimeoutMs: configuration.drainTimeout * 1000,
                testingFilterSwapDelayMs: testing.filterSwapDelayMs
            ),
            events: signals.events,
            services: [statistics],
            logger: logger,
            injectFault: injectFault,
            reload: {
                // logrotate renamed the files before its SIGHUP: append to new ones by the same paths.
                statistics.reopenFiles()
                let next = try reload()
                if let refusal = Self.brokerRefusal(running: running, next: next) { throw SettingError(refusal) }
                let needsRestart =
                    Setting.all.map(\.key).filter { key in
                        !Setting.liveKeys.contains(key)
                            && Setting.byKey[key]!.read(next) != Setting.byKey[key]!.read(running)
                    } + (next.eal != running.eal ? ["eal"] : [])
                // A cutoff or window set by a reload needs the tables a start makes.
                var rules = next.settings.receiveRules
                var tablesNeeded: [String] = []
                if rules.cutoff != nil && !pipeline.hasFlowTables {
                    rules.cutoff = nil
                    tablesNeeded += ["flow-cutoff-packets", "flow-cutoff-bytes"].filter {
                        Setting.byKey[$0]!.read(next) != Setting.byKey[$0]!.read(running)
                    }
                }
                if rules.dedupWindowMicros > 0 && !pipeline.hasDuplicateWindows {
                    rules.dedupWindowMicros = 0
                    tablesNeeded.append("dedup-window-us")
                }
                return .init(
                    kafka: run.withRunDefaults(next.kafka, embeddedBroker: broker),
                    live: ReloadableSettings(next.settings),
                    filter: next.settings.filterExpression,
                    filterEngine: next.settings.filterEngine,
                    rules: rules,
                    needsRestart: needsRestart + tablesNeeded
                )
            }
        )
    }

    /// Why a reload may not take the brokers away: a probe that publishes to brokers never moves to
    /// the embedded one (every packet would end as delivery_failed, or in memory), and `require-broker`
    /// holds for reloads as for the start. Nil when the new configuration keeps brokers, or the probe
    /// ran on the embedded broker and still may.
    static func brokerRefusal(running: ResolvedConfiguration, next: ResolvedConfiguration) -> String? {
        if let required = next.missingRequiredBroker { return required }
        guard running.kafka.hasBrokers, !next.kafka.hasBrokers else { return nil }
        return
            "the new configuration names no Kafka broker (bootstrap.servers or metadata.broker.list, in the -c INI file, the config file's kafka: map or -X), and a reload never moves a running probe off its brokers. Put the brokers back and reload again"
    }

    /// /metrics and /health, on their own event-loop thread, until the probe exits,
    /// from the monitor's snapshots only.
    private func startMetricsServer(
        _ address: String,
        pipeline: CapturePipeline,
        monitor: PipelineMonitor,
        statistics: StatisticsService,
        supervisor: CaptureSupervisor,
        embeddedBroker: Bool
    ) throws -> MetricsServer {
        let parsed = try MetricsAddress(parsing: address)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let exporter = MetricsExporter(
            pipeline: pipeline,
            monitor: monitor,
            registry: registry,
            buildInfo: FastcapaVersion.labels,
            outputs: { statistics.outputCounts },
            refusedReloads: { [supervisor] in supervisor.refusedReloads },
            embeddedBroker: embeddedBroker
        )
        do {
            let server = try MetricsServer(
                host: parsed.host,
                port: parsed.port,
                metrics: { exporter.render() },
                health: { monitor.snapshot.health }
            )
            logger.notice(
                "serving metrics at http://\(server.address)/metrics and health at http://\(server.address)/health"
            )
            return server
        } catch {
            throw StartFailure(
                description:
                    "cannot serve metrics at \(address): \(error). Choose a free HOST:PORT for --metrics-address.",
                status: ExitStatus.startFailed
            )
        }
    }

    /// Properties this run adds: librdkafka's statistics (for health, and -s at
    /// the stats interval), the embedded broker's address.
    private func withRunDefaults(_ properties: KafkaProperties, embeddedBroker: EmbeddedBroker?) -> KafkaProperties {
        var properties = properties
        if properties.globalValue("statistics.interval.ms") == nil {
            let seconds =
                configuration.statsFile != nil && configuration.statsInterval > 0 ? configuration.statsInterval : 1
            properties.setGlobal("statistics.interval.ms", "\(seconds * 1000)", origin: "fastcapa's health checks")
        }
        if let embeddedBroker, !properties.hasBrokers {
            properties.setGlobal("bootstrap.servers", embeddedBroker.bootstrapServers, origin: "embedded broker")
        }
        return properties
    }
}
