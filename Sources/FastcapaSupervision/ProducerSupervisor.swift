import FastcapaCapture
import FastcapaKafka
import Foundation
import Logging

/// Watches one transmit worker's producer and replaces it when it fails.
///
/// It samples the producer's context (written by librdkafka's callbacks on the
/// lcore) every tick, feeds a `ProducerHealth` state machine, and carries out
/// what the machine decides. Replacements run on the worker's own blocking queue:
/// the lcore never waits, and this actor never blocks the cooperative pool.
public actor ProducerSupervisor {
    public nonisolated let worker: TransmitWorker
    private var health: ProducerHealth
    private var kafka: KafkaProperties
    private var live: LiveSettings
    private let blocking: BlockingQueue
    private let logger: Logger
    private let statistics: StatisticsAggregator?
    private var roundTripMs: Double?

    public init(worker: TransmitWorker, kafka: KafkaProperties, live: LiveSettings, policy: ProducerHealth.Policy,
                statistics: StatisticsAggregator? = nil, logger: Logger) {
        self.worker = worker
        self.statistics = statistics
        self.kafka = kafka
        self.live = live
        self.health = ProducerHealth(policy: policy)
        self.blocking = BlockingQueue(label: "fastcapa.tx\(worker.index).supervisor")
        var logger = logger
        logger[metadataKey: "worker"] = "\(worker.index)"
        self.logger = logger
    }

    public var state: ProducerHealth.State { health.state }
    public var restarts: Int { health.restarts }
    /// The slowest broker's average round trip in the latest statistics, in ms.
    public var brokerRoundTripMs: Double? { roundTripMs }

    public func run(tick: Duration = .milliseconds(10)) async {
        while !Task.isCancelled {
            let generation = worker.producer.generation
            if let json = generation.takeStatistics() {
                roundTripMs = LibrdkafkaStatistics.slowestRoundTripMs(json)
                await statistics?.record(json)
            }
            let counts = worker.counts()
            let observation = ProducerHealth.Observation(
                now: Self.now(), fatal: generation.isFatal, allBrokersDownReports: generation.allBrokersDownReports,
                delivered: counts.delivered, inFlight: counts.inFlight, roundTripMs: roundTripMs)
            for action in health.observe(observation) {
                switch action {
                case .report(let state):
                    logger.log(level: state == .healthy ? .notice : .warning, "producer \(state)",
                               metadata: ["generation": "\(generation.number)"])
                case .restart(let delay):
                    let noticed = observation.now
                    let reason = generation.fatalError.map { "\($0.name): \($0.message)" } ?? "fatal error"
                    logger.error("producer failed fatally, replacing it", metadata: [
                        "generation": "\(generation.number)", "error": "\(reason)", "backoff_seconds": "\(delay)"])
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
        let worker = self.worker, kafka = self.kafka, live = self.live
        do {
            let replacement = try await blocking.run { try worker.replaceProducer(kafka: kafka, live: live) }
            let now = Self.now()
            health.restartFinished(at: now)
            roundTripMs = nil
            logger.notice("producer replaced", metadata: [
                "generation": "\(replacement.newGeneration)", "reproduced": "\(replacement.reproduced)",
                "lost": "\(replacement.lost)", "recovery_seconds": "\(String(format: "%.3f", now - noticed))"])
        } catch {
            health.restartFailed(at: Self.now())
            logger.error("cannot create a new producer; will retry", metadata: ["error": "\(error)"])
        }
    }

    /// Swaps in a producer with new properties and live settings (SIGHUP).
    public func reload(kafka: KafkaProperties, live: LiveSettings) async throws -> ProducerReplacement {
        self.kafka = kafka
        self.live = live
        let worker = self.worker
        return try await blocking.run { try worker.replaceProducer(kafka: kafka, live: live) }
    }

    /// Testing aid (--testing-fault-signals): the current producer fails fatally.
    public func injectFatalError() {
        worker.producer.generation.producer.injectFatalError(reason: "injected by SIGUSR2 (--testing-fault-signals)")
    }

    static func now() -> Double { ProcessInfo.processInfo.systemUptime }
}

/// What the supervisor reads in librdkafka's statistics JSON.
public enum LibrdkafkaStatistics {
    /// The largest average round trip (ms) among brokers that are up, if any.
    public static func slowestRoundTripMs(_ json: String) -> Double? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let brokers = object["brokers"] as? [String: Any] else { return nil }
        let roundTrips = brokers.values.compactMap { value -> Double? in
            guard let broker = value as? [String: Any], broker["state"] as? String == "UP",
                  let rtt = broker["rtt"] as? [String: Any], let average = rtt["avg"] as? Double, average > 0 else { return nil }
            return average / 1000 // µs
        }
        return roundTrips.max()
    }
}
