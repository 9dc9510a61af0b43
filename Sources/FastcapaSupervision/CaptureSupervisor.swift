import FastcapaCapture
import FastcapaKafka
import FastcapaObservability
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The root of the actor tree. It owns the running capture's control plane:
///
///     CaptureSupervisor
///     └── ServiceGroup
///         ├── ProducerSupervisor × transmit workers   (health, restarts, reloads)
///         └── the services it is given                 (statistics)
///
/// It runs the group until a stop is asked for (a control event, or
/// `--idle-exit`), then shuts it down gracefully and returns why. Nothing here
/// runs on an lcore, and the lcores never wait for it.
package actor CaptureSupervisor {
    package struct Options: Sendable {
        package var idleExit: Int
        package var policy: ProducerHealth.Policy
        /// How long a stop may take (--drain-timeout): the deadline set when one is asked for.
        package var drainTimeoutMs: Int
        /// A test seam (`TestingHooks.filterSwapDelayMs`): a filter swap waits this long before it publishes.
        package var testingFilterSwapDelayMs: Int
        package init(
            idleExit: Int,
            policy: ProducerHealth.Policy,
            drainTimeoutMs: Int,
            testingFilterSwapDelayMs: Int = 0
        ) {
            self.idleExit = idleExit
            self.policy = policy
            self.drainTimeoutMs = drainTimeoutMs
            self.testingFilterSwapDelayMs = testingFilterSwapDelayMs
        }
    }

    /// What a reload produces: the new Kafka properties and live settings, the
    /// capture filter (nil: none), the flow cutoff and duplicate window, and the
    /// names of settings that changed but need a restart of the probe.
    package struct Reloaded: Sendable {
        package var kafka: KafkaProperties
        package var live: ReloadableSettings
        package var filter: String?
        package var filterEngine: FilterEngine
        package var rules: ReceiveRules
        package var needsRestart: [String]
        package init(
            kafka: KafkaProperties,
            live: ReloadableSettings,
            filter: String?,
            filterEngine: FilterEngine,
            rules: ReceiveRules,
            needsRestart: [String]
        ) {
            self.kafka = kafka
            self.live = live
            self.filter = filter
            self.filterEngine = filterEngine
            self.rules = rules
            self.needsRestart = needsRestart
        }
    }

    private let pipeline: CapturePipeline
    private let monitor: PipelineMonitor
    private let options: Options
    private let logger: Logger
    private let events: AsyncStream<ControlEvent>
    private let reload: @Sendable () throws -> Reloaded
    private let injectFault: (@Sendable (ProducerGeneration) -> Void)?
    private let services: [any Service]
    /// Loads and swaps capture filters on a thread of their own, off the
    /// cooperative pool (a swap waits for an RCU grace period).
    private let filterQueue = GenerationOwner(label: "fastcapa.filter")
    package nonisolated let producers: [ProducerSupervisor]

    /// - Parameters:
    ///   - services: supervised beside the producers (statistics).
    ///   - injectFault: the testing aid `ControlEvent.injectFault` applies to every producer, if enabled.
    package init(
        pipeline: CapturePipeline,
        monitor: PipelineMonitor,
        kafka: KafkaProperties,
        options: Options,
        events: AsyncStream<ControlEvent>,
        services: [any Service],
        logger: Logger,
        injectFault: (@Sendable (ProducerGeneration) -> Void)? = nil,
        reload: @escaping @Sendable () throws -> Reloaded
    ) {
        self.pipeline = pipeline
        self.monitor = monitor
        self.options = options
        self.logger = logger
        self.events = events
        self.reload = reload
        self.injectFault = injectFault
        self.services = services
        producers = pipeline.transmitWorkers.map {
            ProducerSupervisor(
                worker: $0,
                kafka: kafka,
                live: ReloadableSettings(pipeline.settings),
                policy: options.policy,
                monitor: monitor,
                logger: logger
            )
        }
    }

    /// Supervises until a stop is asked for, then shuts its services down and
    /// returns at once: a reload or restart in progress does not hold it up (the
    /// stop's deadline, set here, bounds what they still do on the owner threads).
    package func run() async -> StopReason {
        let group = ServiceGroup(services: producers + services, logger: logger)
        let (requests, requested) = AsyncStream.makeStream(of: ControlEvent.self, bufferingPolicy: .unbounded)
        return await withTaskGroup(of: StopReason?.self) { tasks in
            tasks.addTask {
                do { try await group.run() } catch { self.logger.error("the control plane failed: \(error)") }
                return .servicesEnded
            }
            tasks.addTask { await self.watchEvents(forwardingTo: requested) }
            tasks.addTask { await self.carryOut(requests) }
            if options.idleExit > 0 {
                tasks.addTask { await self.watchIdle() }
            }
            var reason = StopReason.servicesEnded
            while let next = await tasks.next() {
                if let next {
                    reason = next
                    break
                }
            }
            pipeline.requestStop(deadline: CapturePipeline.nowMillis() + options.drainTimeoutMs)
            requested.finish()
            await group.triggerGracefulShutdown()
            tasks.cancelAll()
            await tasks.waitForAll()
            return reason
        }
    }

    /// Waits for a capture filter swap still under way (a stop cancelled the wait
    /// for it, not the swap): the pipeline, and the filter slot with it, must not
    /// be released while a swap loads or publishes a program. Bounded: a load and
    /// one grace period. Blocks; call it from the main lcore after `run`.
    package nonisolated func waitForFilterSwap() { filterQueue.sync {} }

    /// The probe's health, from the monitor's latest snapshot.
    package nonisolated func health() -> HealthSummary { monitor.snapshot.health }

    /// Reads control events until one asks for a stop; hands the others to
    /// `carryOut`, so that a stop is seen at once even while a reload runs.
    private func watchEvents(forwardingTo requests: AsyncStream<ControlEvent>.Continuation) async -> StopReason? {
        for await event in events {
            if case .stop(let signal) = event { return .signal(signal) }
            requests.yield(event)
        }
        return nil
    }

    /// Reloads and fault injections, one after another, until a stop.
    private func carryOut(_ requests: AsyncStream<ControlEvent>) async -> StopReason? {
        for await request in requests {
            guard !Task.isCancelled else { break }
            switch request {
            case .reload:
                await reloadConfiguration()
            case .injectFault:
                guard let injectFault else { continue }
                logger.warning("SIGUSR2: injecting a fatal error into every producer (a test seam)")
                for producer in producers where !Task.isCancelled {
                    try? await producer.worker.withCurrentGeneration(injectFault)
                }
            case .stop:
                break
            }
        }
        return nil
    }

    /// --idle-exit: a stop once no packet arrived for that long.
    private func watchIdle() async -> StopReason? {
        var lastReceived: UInt64 = 0
        var lastPacket = ProcessInfo.processInfo.systemUptime
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(10))
            let now = ProcessInfo.processInfo.systemUptime
            let received = monitor.snapshot.capture.rx.received
            if received != lastReceived {
                lastReceived = received
                lastPacket = now
            } else if now - lastPacket >= Double(options.idleExit) {
                return .idle(seconds: options.idleExit)
            }
        }
        return nil
    }

    /// A SIGHUP's capture filter, loaded before anything is applied; `publish` is false when the
    /// filter, its engine and snap length are unchanged.
    private struct PreparedFilter: @unchecked Sendable {
        var publish: Bool
        var filter: PacketFilter?
        var old: String?
    }

    /// Loads the SIGHUP's filter (if it changed) off the lcores and checks that librdkafka builds a
    /// producer from the new properties: everything that can refuse a reload, before any of it applies.
    private func prepare(_ reloaded: Reloaded) async throws -> PreparedFilter {
        // What runs now, as values: holding the running filter here would keep its program alive past the swap.
        let running = pipeline.filter.current.map {
            (expression: $0.expression, engine: $0.engine, snap: $0.snapLength)
        }
        let unchanged =
            running?.expression == reloaded.filter
            && (running == nil
                || (running?.engine == reloaded.filterEngine && running?.snap == reloaded.live.snapLength))
        let topic = pipeline.settings.topics.first ?? pipeline.settings.topic
        return try await filterQueue.run {
            try KafkaProducer.validate(properties: reloaded.kafka, topicName: topic)
            guard !unchanged else { return PreparedFilter(publish: false, filter: nil, old: running?.expression) }
            let filter = try CapturePipeline.loadFilter(
                reloaded.filter,
                snapLength: reloaded.live.snapLength,
                engine: reloaded.filterEngine
            )
            return PreparedFilter(publish: true, filter: filter, old: running?.expression)
        }
    }

    /// Publishes a prepared filter through RCU (the old program freed after the grace period), on
    /// the filter's thread, logged there: a stop may end this wait before the swap does.
    private func publish(_ prepared: PreparedFilter) async {
        guard prepared.publish else { return }
        let pipeline = self.pipeline
        let logger = self.logger
        let delayMs = options.testingFilterSwapDelayMs
        _ = try? await filterQueue.run {
            if delayMs > 0 { usleep(UInt32(delayMs) * 1000) }
            let swap = pipeline.publishFilter(prepared.filter)
            logger.notice(
                swap.new == nil ? "SIGHUP: capture filter removed" : "SIGHUP: capture filter replaced",
                metadata: [
                    "filter": "\(pipeline.filter.current?.summary ?? "none")", "old": "\(swap.old ?? "none")",
                    "old_programs_freed": "\(swap.freed)",
                ]
            )
        }
    }

    /// Publishes new receive rules (flow cutoff, duplicate window) through RCU when they changed, on
    /// the filter's thread (the grace period blocks it). The flow tables and windows are kept.
    private func publish(_ rules: ReceiveRules) async {
        let pipeline = self.pipeline
        let logger = self.logger
        guard pipeline.rules.current != rules else { return }
        _ = try? await filterQueue.run {
            pipeline.rules.replace(with: rules)
            logger.notice(
                "SIGHUP: flow cutoff and duplicate window replaced (flow tables and windows kept)",
                metadata: [
                    "flow_cutoff": "\(rules.cutoff.map(\.summary) ?? "none")",
                    "dedup_window_us": "\(rules.dedupWindowMicros)",
                ]
            )
        }
    }

    /// Reloads refused since the start (a configuration that cannot be read, loses the brokers, or
    /// that librdkafka or DPDK refuses): `fastcapa_reloads_refused_total`.
    package nonisolated var refusedReloads: Int { refusals.load(ordering: .relaxed) }
    private nonisolated let refusals = Atomic<Int>(0)

    private func refuse(_ error: any Error) {
        refusals.add(1, ordering: .relaxed)
        logger.error(
            "SIGHUP: the new configuration is refused; nothing of it was applied, the running one stays",
            metadata: ["error": "\(error)"]
        )
    }

    /// SIGHUP: read the configuration again, check all of it (the capture filter loads, librdkafka
    /// builds a producer from the new properties) before any of it applies, then swap the filter and
    /// the producers, worker after worker, until a stop. A refused configuration changes nothing.
    private func reloadConfiguration() async {
        let reloaded: Reloaded
        let prepared: PreparedFilter
        do {
            reloaded = try reload()
            prepared = try await prepare(reloaded)
        } catch is CancellationError {
            return
        } catch {
            refuse(error)
            return
        }
        for name in reloaded.needsRestart {
            logger.warning("SIGHUP: '\(name)' changed but only takes effect when the probe restarts")
        }
        await publish(prepared)
        await publish(reloaded.rules)
        for (index, producer) in producers.enumerated() {
            guard !Task.isCancelled else { return }
            do {
                let replacement = try await producer.reload(kafka: reloaded.kafka, live: reloaded.live)
                logger.notice(
                    "SIGHUP: producer reloaded",
                    metadata: [
                        "worker": "\(replacement.worker)", "generation": "\(replacement.newGeneration)",
                        "reproduced": "\(replacement.reproduced)", "lost": "\(replacement.lost)",
                        "trim_seconds": "\(String(format: "%.4f", replacement.trimSeconds))",
                    ]
                )
            } catch is CancellationError {
                return
            } catch let skipped as ReplacementSkipped {
                logger.notice("SIGHUP: reload skipped: \(skipped)")
                return
            } catch {
                // Checked before, so this is rare (a transient failure); say exactly what runs now.
                let applied = index == 0 ? "none" : "0 to \(index - 1)"
                logger.error(
                    "SIGHUP: worker \(producer.worker.index) cannot create a producer from the new configuration; workers \(applied) run the new one, worker \(producer.worker.index) and the rest keep the previous one (for restarts too)\(prepared.publish ? "; the new capture filter is in place" : "")",
                    metadata: ["error": "\(error)"]
                )
                return
            }
        }
    }
}
