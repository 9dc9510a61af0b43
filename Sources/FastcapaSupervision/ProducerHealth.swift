import FastcapaObservability

/// The health of one transmit worker's producer, as a state machine whose
/// methods return what to do (swift-kafka-client's style): it holds no
/// resources and runs no I/O, so it is tested without Kafka.
///
/// Policy:
/// - a fatal error (idempotence failures, fenced producer...) leaves a producer
///   useless forever: restart it, at once the first time, then backing off
///   exponentially up to a cap while restarts keep coming. A decision names the
///   generation it is about: if another generation takes its place meanwhile (a
///   reload), the decision is dropped, and observations of older generations
///   (a sample taken before the swap) are ignored;
/// - all brokers down: keep the producer (librdkafka reconnects by itself) and
///   report degraded until deliveries resume;
/// - messages waiting with no delivery for `stallSeconds`, or a broker round trip
///   above `slowRoundTripMs` (librdkafka's statistics): report degraded;
/// - `maxRestarts` restart attempts within `restartWindow`: report unhealthy
///   (and keep restarting, at the capped backoff: capture goes on).
package struct ProducerHealth: Sendable {
    package struct Policy: Sendable, Equatable {
        package var backoffBase: Double = 0.1
        package var backoffCap: Double = 30
        package var maxRestarts: Int = 10
        package var restartWindow: Double = 60
        package var stallSeconds: Double = 30
        /// A broker round trip (librdkafka's statistics, average) above this: degraded.
        package var slowRoundTripMs: Double = 1000
        package init() {}
    }

    /// Its state is the probe's health vocabulary (`HealthState`), which the monitor's snapshots carry.
    package typealias State = HealthState

    /// What the supervisor saw of the producer at one moment.
    package struct Observation: Sendable {
        package var now: Double
        /// The generation observed.
        package var generation: Int
        package var fatal: Bool
        package var allBrokersDownReports: UInt64
        package var delivered: UInt64
        package var inFlight: UInt64
        /// The slowest broker's average round trip in librdkafka's latest statistics.
        package var roundTripMs: Double?
        package init(
            now: Double,
            generation: Int = 1,
            fatal: Bool,
            allBrokersDownReports: UInt64,
            delivered: UInt64,
            inFlight: UInt64,
            roundTripMs: Double? = nil
        ) {
            self.now = now
            self.generation = generation
            self.fatal = fatal
            self.allBrokersDownReports = allBrokersDownReports
            self.delivered = delivered
            self.inFlight = inFlight
            self.roundTripMs = roundTripMs
        }
    }

    package enum Action: Sendable, Equatable {
        /// Replace the producer of `generation` after waiting this many seconds,
        /// unless another generation is in place by then.
        case restart(afterSeconds: Double, generation: Int)
        /// The state changed: log it.
        case report(State)
    }

    package let policy: Policy
    package private(set) var state: State = .healthy
    package private(set) var restarts = 0
    private var recentRestarts: [Double] = []
    private var brokersDownReports: UInt64 = 0
    private var brokersDown = false
    private var lastDelivered: UInt64 = 0
    private var lastProgress: Double?
    /// The generation a restart was decided for, until it is replaced (or the decision dropped).
    private var restartingGeneration: Int?
    /// The newest generation seen or put in place: older observations are stale.
    private var newestGeneration = 0

    package init(policy: Policy = Policy()) {
        self.policy = policy
    }

    package mutating func observe(_ observation: Observation) -> [Action] {
        // A sample of a generation already replaced says nothing about the one in place.
        guard observation.generation >= newestGeneration else { return [] }
        newestGeneration = observation.generation
        if let pending = restartingGeneration, pending != observation.generation {
            // Another generation took its place (a reload): the decision is void.
            restartingGeneration = nil
        }
        let now = observation.now
        if lastProgress == nil { lastProgress = now }
        if observation.delivered != lastDelivered {
            // Deliveries resumed: the brokers are back.
            brokersDown = false
        }
        if observation.delivered != lastDelivered || observation.inFlight == 0 {
            lastDelivered = observation.delivered
            lastProgress = now
        }
        if observation.allBrokersDownReports != brokersDownReports {
            brokersDownReports = observation.allBrokersDownReports
            brokersDown = true
        }
        recentRestarts.removeAll { now - $0 > policy.restartWindow }

        var restart: Action?
        if observation.fatal && restartingGeneration == nil {
            restartingGeneration = observation.generation
            let delay =
                recentRestarts.isEmpty
                ? 0 : min(policy.backoffBase * Double(1 << min(recentRestarts.count - 1, 30)), policy.backoffCap)
            restart = .restart(afterSeconds: delay, generation: observation.generation)
        }

        let next: State
        if recentRestarts.count >= policy.maxRestarts {
            next = .unhealthy("\(recentRestarts.count) restarts in \(Int(policy.restartWindow)) s")
        } else if restartingGeneration != nil {
            next = .restarting
        } else if brokersDown {
            next = .degraded("all brokers down")
        } else if let roundTrip = observation.roundTripMs, roundTrip > policy.slowRoundTripMs {
            next = .degraded("broker round trip \(Int(roundTrip)) ms")
        } else if let lastProgress, observation.inFlight > 0, now - lastProgress >= policy.stallSeconds {
            next = .degraded(
                "no delivery for \(Int(now - lastProgress)) s with \(observation.inFlight) messages waiting"
            )
        } else {
            next = .healthy
        }
        var actions: [Action] = []
        if next != state {
            state = next
            actions.append(.report(next))
        }
        if let restart { actions.append(restart) }
        return actions
    }

    /// A restart was decided and is not carried out yet (the state may say
    /// unhealthy meanwhile: too many restarts within the window).
    package var restartDecided: Bool { restartingGeneration != nil }

    /// The new producer (`generation`) is in place.
    package mutating func restartFinished(at now: Double, generation: Int) {
        restartingGeneration = nil
        newestGeneration = max(newestGeneration, generation)
        restarts += 1
        recentRestarts.append(now)
        brokersDown = false
        lastProgress = now
    }

    /// The new producer could not be made (bad properties...): try again later.
    package mutating func restartFailed(at now: Double) {
        restartingGeneration = nil
        recentRestarts.append(now)
    }

    /// The restart was not carried out: another generation had taken the failed
    /// one's place, or a stop came. Nothing is counted.
    package mutating func restartDropped() {
        restartingGeneration = nil
    }

    /// Another generation was put in place (a reload): observations of older ones are stale.
    package mutating func replaced(by generation: Int) {
        newestGeneration = max(newestGeneration, generation)
    }
}
