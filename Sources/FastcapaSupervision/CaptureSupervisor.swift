import CDPDK
import FastcapaCapture
import FastcapaKafka
import Foundation
import Logging

/// The root of the actor tree. It owns the running capture's control plane:
///
///     CaptureSupervisor
///     ├── ProducerSupervisor × transmit workers   (health, restarts, reloads)
///     └── StatisticsAggregator                     (table, -s file, counter trace)
///
/// and watches the process's signals: SIGINT/SIGTERM stop, SIGHUP reloads, and
/// SIGUSR2 injects a fatal producer error when fault signals are enabled for
/// testing. Nothing here runs on an lcore, and the lcores never wait for it.
public actor CaptureSupervisor {
    public struct Options: Sendable {
        public var idleExit: Int
        public var policy: ProducerHealth.Policy
        public var testingFaultSignals: Bool
        public init(idleExit: Int, policy: ProducerHealth.Policy, testingFaultSignals: Bool) {
            self.idleExit = idleExit
            self.policy = policy
            self.testingFaultSignals = testingFaultSignals
        }
    }

    public enum StopReason: Sendable, CustomStringConvertible {
        case signal(Int32)
        case idle(seconds: Int)
        public var description: String {
            switch self {
            case .signal(let number): "signal \(number)"
            case .idle(let seconds): "no packet for \(seconds) s"
            }
        }
    }

    /// What a reload produces: the new Kafka properties and live settings, and
    /// the names of settings that changed but need a restart of the probe.
    public struct Reloaded: Sendable {
        public var kafka: KafkaProperties
        public var live: LiveSettings
        public var needsRestart: [String]
        public init(kafka: KafkaProperties, live: LiveSettings, needsRestart: [String]) {
            self.kafka = kafka
            self.live = live
            self.needsRestart = needsRestart
        }
    }

    private let pipeline: CapturePipeline
    private let options: Options
    private let logger: Logger
    private let reload: @Sendable () throws -> Reloaded
    public nonisolated let producers: [ProducerSupervisor]
    public nonisolated let statistics: StatisticsAggregator

    public init(pipeline: CapturePipeline, kafka: KafkaProperties, options: Options, outputs: StatisticsAggregator.Outputs,
                logger: Logger, reload: @escaping @Sendable () throws -> Reloaded) {
        self.pipeline = pipeline
        self.options = options
        self.logger = logger
        self.reload = reload
        let statistics = StatisticsAggregator(pipeline: pipeline, outputs: outputs)
        self.statistics = statistics
        producers = pipeline.transmitWorkers.map {
            ProducerSupervisor(worker: $0, kafka: kafka, live: LiveSettings(pipeline.settings), policy: options.policy,
                               statistics: statistics, logger: logger)
        }
    }

    /// Supervises until a stop is asked for, then stops its children.
    public func run() async -> StopReason {
        let producers = self.producers
        await statistics.setHealthSource { [weak self] in await self?.health() ?? HealthSummary() }
        return await withTaskGroup(of: Void.self) { group in
            for producer in producers {
                group.addTask { await producer.run() }
            }
            group.addTask { [statistics] in await statistics.run() }
            let reason = await watch()
            group.cancelAll()
            return reason
        }
    }

    /// The probe's health: the worst of its producers'.
    public func health() async -> HealthSummary {
        var states: [ProducerHealth.State] = []
        var restarts = 0
        for producer in producers {
            states.append(await producer.state)
            restarts += await producer.restarts
        }
        return HealthSummary.worst(states, restarts: restarts)
    }

    private func watch() async -> StopReason {
        var reloads = cfc_reload_requests()
        var faults = cfc_fault_requests()
        var lastReceived: UInt64 = 0
        var lastPacket = ProcessInfo.processInfo.systemUptime
        while true {
            try? await Task.sleep(for: .milliseconds(10))
            if cfc_stop_requested() { return .signal(cfc_stop_signal()) }
            if cfc_reload_requests() != reloads {
                reloads = cfc_reload_requests()
                await reloadConfiguration()
            }
            if options.testingFaultSignals && cfc_fault_requests() != faults {
                faults = cfc_fault_requests()
                logger.warning("SIGUSR2: injecting a fatal error into every producer (--testing-fault-signals)")
                for producer in producers { await producer.injectFatalError() }
            }
            if options.idleExit > 0 {
                let now = ProcessInfo.processInfo.systemUptime
                let received = pipeline.snapshot().rx.received
                if received != lastReceived {
                    lastReceived = received
                    lastPacket = now
                } else if now - lastPacket >= Double(options.idleExit) {
                    return .idle(seconds: options.idleExit)
                }
            }
        }
    }

    /// SIGHUP: read the configuration again and swap in producers built from it.
    /// An invalid configuration is refused with a log line; the running one stays.
    private func reloadConfiguration() async {
        let reloaded: Reloaded
        do {
            reloaded = try reload()
        } catch {
            logger.error("SIGHUP: the new configuration is refused; keeping the running one", metadata: ["error": "\(error)"])
            return
        }
        for name in reloaded.needsRestart {
            logger.warning("SIGHUP: '\(name)' changed but only takes effect when the probe restarts")
        }
        for producer in producers {
            do {
                let replacement = try await producer.reload(kafka: reloaded.kafka, live: reloaded.live)
                logger.notice("SIGHUP: producer reloaded", metadata: [
                    "worker": "\(replacement.worker)", "generation": "\(replacement.newGeneration)",
                    "reproduced": "\(replacement.reproduced)", "lost": "\(replacement.lost)"])
            } catch {
                logger.error("SIGHUP: cannot create a producer from the new configuration; keeping the running one",
                             metadata: ["error": "\(error)"])
            }
        }
    }
}
