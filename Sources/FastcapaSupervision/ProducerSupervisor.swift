import FastcapaCapture
import FastcapaKafka
import Foundation
import Logging
import ServiceLifecycle

/// Watches one transmit worker's producer and replaces it when it fails.
///
/// It samples the producer's context (written by librdkafka's callbacks on the
/// lcore) every tick, feeds a `ProducerHealth` state machine, and carries out
/// what the machine decides. Replacements run on the worker's own blocking queue:
/// the lcore never waits, and this actor never blocks the cooperative pool.
package actor ProducerSupervisor: Service {
    package nonisolated let worker: TransmitWorker
    private var health: ProducerHealth
    private var kafka: KafkaProperties
    private var live: LiveSettings
    private let blocking: BlockingQueue
    private let logger: Logger
    /// Where librdkafka's statistics JSON goes (-s), taken from the producer's mailbox.
    private let onStatistics: @Sendable (String) async -> Void
    private var roundTripMs: Double?
    private let tick: Duration

    package init(
        worker: TransmitWorker,
        kafka: KafkaProperties,
        live: LiveSettings,
        policy: ProducerHealth.Policy,
        logger: Logger,
        tick: Duration = .milliseconds(10),
        onStatistics: @escaping @Sendable (String) async -> Void
    ) {
        self.worker = worker
        self.kafka = kafka
        self.live = live
        self.health = ProducerHealth(policy: policy)
        self.blocking = BlockingQueue(label: "fastcapa.tx\(worker.index).supervisor")
        self.tick = tick
        self.onStatistics = onStatistics
        var logger = logger
        logger[metadataKey: "worker"] = "\(worker.index)"
        self.logger = logger
    }

    package var state: ProducerHealth.State { health.state }
    package var restarts: Int { health.restarts }
    /// The slowest broker's average round trip in the latest statistics, in ms.
    package var brokerRoundTripMs: Double? { roundTripMs }

    /// Supervises until the group shuts down gracefully (a restart waiting out
    /// its backoff is then dropped: the drain deals with the failed producer).
    package func run() async throws {
        await cancelWhenGracefulShutdown { await self.supervise() }
    }

    private func supervise() async {
        while !Task.isCancelled {
            let generation = worker.producer.generation
            if let json = generation.takeStatistics() {
                roundTripMs = LibrdkafkaStatistics.slowestRoundTripMs(json)
                await onStatistics(json)
            }
            let counts = worker.counts()
            let observation = ProducerHealth.Observation(
                now: Self.now(),
                fatal: generation.isFatal,
                allBrokersDownReports: generation.allBrokersDownReports,
                delivered: counts.delivered,
                inFlight: counts.inFlight,
                roundTripMs: roundTripMs
            )
            for action in health.observe(observation) {
                switch action {
                case .report(let state):
                    logger.log(
                        level: state == .healthy ? .notice : .warning,
                        "producer \(state)",
                        metadata: ["generation": "\(generation.number)"]
                    )
                case .restart(let delay):
                    let noticed = observation.now
                    let reason = generation.fatalError.map { "\($0.name): \($0.message)" } ?? "fatal error"
                    logger.error(
                        "producer failed fatally, replacing it",
                        metadata: [
                            "generation": "\(generation.number)", "error": "\(reason)", "backoff_seconds": "\(delay)",
                        ]
                    )
                    if delay > 0 { try? await Task.sleep(for: .seconds(delay)) }
                    // A stop cancels the backoff: leave the failed producer to the drain.
                    guard !Task.isCancelled else { return }
                    await replace(noticedAt: noticed)
                }
            }
            try? await Task.sleep(for: tick)
        }
    }

    private func replace(noticedAt noticed: Double) async {
        let worker = self.worker
        let kafka = self.kafka
        let live = self.live
        do {
            let replacement = try await blocking.run { try worker.replaceProducer(kafka: kafka, live: live) }
            let now = Self.now()
            health.restartFinished(at: now)
            roundTripMs = nil
            logger.notice(
                "producer replaced",
                metadata: [
                    "generation": "\(replacement.newGeneration)", "reproduced": "\(replacement.reproduced)",
                    "lost": "\(replacement.lost)", "recovery_seconds": "\(String(format: "%.3f", now - noticed))",
                ]
            )
        } catch {
            health.restartFailed(at: Self.now())
            logger.error("cannot create a new producer; will retry", metadata: ["error": "\(error)"])
        }
    }

    /// Swaps in a producer with new properties and live settings (SIGHUP).
    package func reload(kafka: KafkaProperties, live: LiveSettings) async throws -> ProducerReplacement {
        self.kafka = kafka
        self.live = live
        let worker = self.worker
        return try await blocking.run { try worker.replaceProducer(kafka: kafka, live: live) }
    }

    /// The producer in place now (the fault-injection testing aid acts on it).
    package var currentGeneration: ProducerGeneration { worker.producer.generation }

    static func now() -> Double { ProcessInfo.processInfo.systemUptime }
}
