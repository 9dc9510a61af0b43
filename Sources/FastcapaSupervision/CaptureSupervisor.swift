import FastcapaCapture
import FastcapaKafka
import Foundation
import Logging
import ServiceLifecycle

/// The root of the actor tree. It owns the running capture's control plane:
///
///     CaptureSupervisor
///     └── ServiceGroup
///         ├── ProducerSupervisor × transmit workers   (health, restarts, reloads)
///         └── the services it is given                 (statistics, metrics server)
///
/// It runs the group until a stop is asked for (a control event, or
/// `--idle-exit`), then shuts it down gracefully and returns why. Nothing here
/// runs on an lcore, and the lcores never wait for it.
package actor CaptureSupervisor {
    package struct Options: Sendable {
        package var idleExit: Int
        package var policy: ProducerHealth.Policy
        package init(idleExit: Int, policy: ProducerHealth.Policy) {
            self.idleExit = idleExit
            self.policy = policy
        }
    }

    /// What a reload produces: the new Kafka properties and live settings, the
    /// capture filter (nil: none), and the names of settings that changed but
    /// need a restart of the probe.
    package struct Reloaded: Sendable {
        package var kafka: KafkaProperties
        package var live: LiveSettings
        package var filter: String?
        package var filterEngine: FilterEngine
        package var needsRestart: [String]
        package init(
            kafka: KafkaProperties,
            live: LiveSettings,
            filter: String?,
            filterEngine: FilterEngine,
            needsRestart: [String]
        ) {
            self.kafka = kafka
            self.live = live
            self.filter = filter
            self.filterEngine = filterEngine
            self.needsRestart = needsRestart
        }
    }

    private let pipeline: CapturePipeline
    private let options: Options
    private let logger: Logger
    private let events: AsyncStream<ControlEvent>
    private let reload: @Sendable () throws -> Reloaded
    private let injectFault: (@Sendable (ProducerGeneration) -> Void)?
    private let services: [any Service]
    /// Loads and swaps capture filters off the cooperative pool.
    private let filterQueue = BlockingQueue(label: "fastcapa.filter")
    package nonisolated let producers: [ProducerSupervisor]

    /// - Parameters:
    ///   - services: supervised beside the producers (statistics, metrics server).
    ///   - onStatistics: receives librdkafka's statistics JSON as the producer supervisors take it.
    ///   - injectFault: the testing aid `ControlEvent.injectFault` applies to every producer, if enabled.
    package init(
        pipeline: CapturePipeline,
        kafka: KafkaProperties,
        options: Options,
        events: AsyncStream<ControlEvent>,
        services: [any Service],
        logger: Logger,
        onStatistics: @escaping @Sendable (String) async -> Void,
        injectFault: (@Sendable (ProducerGeneration) -> Void)? = nil,
        reload: @escaping @Sendable () throws -> Reloaded
    ) {
        self.pipeline = pipeline
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
                live: LiveSettings(pipeline.settings),
                policy: options.policy,
                logger: logger,
                onStatistics: onStatistics
            )
        }
    }

    /// Supervises until a stop is asked for, then shuts its services down.
    package func run() async -> StopReason {
        let group = ServiceGroup(services: producers + services, logger: logger)
        return await withTaskGroup(of: StopReason?.self) { tasks in
            tasks.addTask {
                do { try await group.run() } catch { self.logger.error("the control plane failed: \(error)") }
                return .servicesEnded
            }
            tasks.addTask { await self.watchEvents() }
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
            await group.triggerGracefulShutdown()
            tasks.cancelAll()
            await tasks.waitForAll()
            return reason
        }
    }

    /// The probe's health: the worst of its producers'.
    package func health() async -> HealthSummary {
        var states: [ProducerHealth.State] = []
        var restarts = 0
        for producer in producers {
            states.append(await producer.state)
            restarts += await producer.restarts
        }
        return HealthSummary.worst(states, restarts: restarts)
    }

    /// Carries out control events until one asks for a stop.
    private func watchEvents() async -> StopReason? {
        for await event in events {
            switch event {
            case .stop(let signal):
                return .signal(signal)
            case .reload:
                await reloadConfiguration()
            case .injectFault:
                guard let injectFault else { continue }
                logger.warning("SIGUSR2: injecting a fatal error into every producer (--testing-fault-signals)")
                for producer in producers { injectFault(await producer.currentGeneration) }
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
            let received = pipeline.snapshot().rx.received
            if received != lastReceived {
                lastReceived = received
                lastPacket = now
            } else if now - lastPacket >= Double(options.idleExit) {
                return .idle(seconds: options.idleExit)
            }
        }
        return nil
    }

    /// SIGHUP with a changed capture filter (or engine, or snap length): load the
    /// new program off the lcores, publish it through RCU, free the old one after
    /// the grace period. A program DPDK refuses leaves the running filter in place.
    private func swapFilter(_ reloaded: Reloaded) async {
        // What runs now, as values: holding the running filter here would keep its program alive past the swap.
        let running = pipeline.filter.current.map {
            (expression: $0.expression, engine: $0.engine, snap: $0.snapLength)
        }
        let unchanged =
            running?.expression == reloaded.filter
            && (running == nil
                || (running?.engine == reloaded.filterEngine && running?.snap == reloaded.live.snapLength))
        guard !unchanged else { return }
        let pipeline = self.pipeline
        do {
            let swap = try await filterQueue.run {
                try pipeline.replaceFilter(
                    reloaded.filter,
                    snapLength: reloaded.live.snapLength,
                    engine: reloaded.filterEngine
                )
            }
            logger.notice(
                swap.new == nil ? "SIGHUP: capture filter removed" : "SIGHUP: capture filter replaced",
                metadata: [
                    "filter": "\(pipeline.filter.current?.summary ?? "none")", "old": "\(swap.old ?? "none")",
                    "old_programs_freed": "\(swap.freed)",
                ]
            )
        } catch {
            logger.error(
                "SIGHUP: the new capture filter is refused; keeping the running one",
                metadata: ["error": "\(error)", "filter": "\(running?.expression ?? "none")"]
            )
        }
    }

    /// SIGHUP: read the configuration again and swap in producers built from it.
    /// An invalid configuration is refused with a log line; the running one stays.
    private func reloadConfiguration() async {
        let reloaded: Reloaded
        do {
            reloaded = try reload()
        } catch {
            logger.error(
                "SIGHUP: the new configuration is refused; keeping the running one",
                metadata: ["error": "\(error)"]
            )
            return
        }
        for name in reloaded.needsRestart {
            logger.warning("SIGHUP: '\(name)' changed but only takes effect when the probe restarts")
        }
        await swapFilter(reloaded)
        for producer in producers {
            do {
                let replacement = try await producer.reload(kafka: reloaded.kafka, live: reloaded.live)
                logger.notice(
                    "SIGHUP: producer reloaded",
                    metadata: [
                        "worker": "\(replacement.worker)", "generation": "\(replacement.newGeneration)",
                        "reproduced": "\(replacement.reproduced)", "lost": "\(replacement.lost)",
                    ]
                )
            } catch {
                logger.error(
                    "SIGHUP: cannot create a producer from the new configuration; keeping the running one",
                    metadata: ["error": "\(error)"]
                )
            }
        }
    }
}
