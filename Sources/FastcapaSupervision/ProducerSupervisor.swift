import FastcapaCapture
import FastcapaKafka
import FastcapaObservability
import Foundation
import Logging
import ServiceLifecycle

/// Watches one transmit worker's producer and replaces it when it fails.
///
/// Every tick it reads the worker's part of the monitor's latest snapshot (the
/// sampler read the producer's context, written by librdkafka's callbacks on the
/// lcore), feeds a `ProducerHealth` state machine, and carries out what the
/// machine decides. It never touches a producer itself: replacements run on the
/// worker's owner thread, and its wait for them is cancellable, so a stop never
/// waits for a replacement here. A restart waiting out its backoff does not stop
/// the sampling, and when the backoff ends it replaces only the generation it
/// was decided for.
package actor ProducerSupervisor: Service {
    package nonisolated let worker: TransmitWorker
    private var health: ProducerHealth
    private var kafka: KafkaProperties
    private var live: ReloadableSettings
    private let monitor: PipelineMonitor
    private let logger: Logger
    private let tick: Duration
    /// A restart decided and waiting out its backoff.
    private var pending: (generation: Int, due: Double, noticed: Double)?

    package init(
        worker: TransmitWorker,
        kafka: KafkaProperties,
        live: ReloadableSettings,
        policy: ProducerHealth.Policy,
        monitor: PipelineMonitor,
        logger: Logger,
        tick: Duration = .milliseconds(10)
    ) {
        self.worker = worker
        self.kafka = kafka
        self.live = live
        self.health = ProducerHealth(policy: policy)
        self.monitor = monitor
        self.tick = tick
        var logger = logger
        logger[metadataKey: "worker"] = "\(worker.index)"
        self.logger = logger
    }

    package var state: ProducerHealth.State { health.state }

    /// Supervises until the group shuts down gracefully (a restart waiting out
    /// its backoff is then dropped: the drain deals with the failed producer).
    package func run() async throws {
        await cancelWhenGracefulShutdown { await self.supervise() }
    }

    private func supervise() async {
        var lastSequence = -1
        while !Task.isCancelled {
            let snapshot = monitor.snapshot
            if snapshot.sequence != lastSequence, worker.index < snapshot.capture.producers.count {
                lastSequence = snapshot.sequence
                observe(snapshot)
            }
            if let pending, Self.now() >= pending.due {
                self.pending = nil
                await restart(pending)
            }
            try? await Task.sleep(for: tick)
        }
    }

    private func observe(_ snapshot: PipelineMonitor.Snapshot) {
        let sample = snapshot.capture.producers[worker.index]
        let counts = snapshot.capture.perWorker[worker.index]
        let observation = ProducerHealth.Observation(
            now: snapshot.uptime,
            generation: sample.generation,
            fatal: sample.fatal,
            allBrokersDownReports: sample.allBrokersDownReports,
            delivered: counts.delivered,
            inFlight: UInt64(max(sample.kafkaQueued, 0)),
            roundTripMs: sample.roundTripMs
        )
        for action in health.observe(observation) {
            switch action {
            case .report(let state):
                monitor.report(worker: worker.index, state: state)
                logger.log(
                    level: state == .healthy ? .notice : .warning,
                    "producer \(state)",
                    metadata: ["generation": "\(sample.generation)"]
                )
            case .restart(let delay, let generation):
                logger.error(
                    "producer failed fatally, replacing it",
                    metadata: [
                        "generation": "\(generation)", "error": "\(sample.fatalReason ?? "fatal error")",
                        "backoff_seconds": "\(delay)",
                    ]
                )
                pending = (generation, Self.now() + delay, observation.now)
            }
        }
        if pending != nil && !health.restartDecided {
            // The decision was dropped (another generation took the failed one's place).
            pending = nil
        }
    }

    private func restart(_ pending: (generation: Int, due: Double, noticed: Double)) async {
        do {
            let replacement = try await worker.replaceProducer(
                kafka: kafka,
                live: live,
                reason: .restart,
                expecting: pending.generation
            )
            let now = Self.now()
            health.restartFinished(at: now, generation: replacement.newGeneration)
            monitor.report(worker: worker.index, state: health.state)
            logger.notice(
                "producer replaced",
                metadata: [
                    "generation": "\(replacement.newGeneration)", "reproduced": "\(replacement.reproduced)",
                    "lost": "\(replacement.lost)",
                    "recovery_seconds": "\(String(format: "%.3f", now - pending.noticed))",
                    "trim_seconds": "\(String(format: "%.4f", replacement.trimSeconds))",
                ]
            )
        } catch let skipped as ReplacementSkipped {
            health.restartDropped()
            logger.notice("producer restart dropped: \(skipped)", metadata: ["generation": "\(pending.generation)"])
        } catch is CancellationError {
            health.restartDropped()  // a stop: the drain deals with the producer in place
        } catch {
            health.restartFailed(at: Self.now())
            logger.error("cannot create a new producer; will retry", metadata: ["error": "\(error)"])
        }
    }

    /// Swaps in a producer with new properties and live settings (SIGHUP). They are
    /// in force for restarts from before the await: the new producer is published
    /// before its predecessor has retired, and a restart decided meanwhile (the new
    /// one failed fatally) must build from what the failed one was built from.
    /// Properties librdkafka refuses (no producer was built) leave the running ones.
    package func reload(kafka: KafkaProperties, live: ReloadableSettings) async throws -> ProducerReplacement {
        let previous = (kafka: self.kafka, live: self.live)
        self.kafka = kafka
        self.live = live
        do {
            let replacement = try await worker.replaceProducer(kafka: kafka, live: live, reason: .reload)
            health.replaced(by: replacement.newGeneration)
            return replacement
        } catch {
            (self.kafka, self.live) = previous
            throw error
        }
    }

    static func now() -> Double { ProcessInfo.processInfo.systemUptime }
}
