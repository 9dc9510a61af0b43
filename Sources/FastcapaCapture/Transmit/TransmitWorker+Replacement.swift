import CLinux
import FastcapaKafka
import Glibc

/// What replacing a transmit worker's producer did.
package struct ProducerReplacement: Sendable {
    package var worker: Int
    package var newGeneration: Int
    /// Messages the old producer still held that went to the new one.
    package var reproduced: UInt64
    /// Messages the old producer still held that could not be re-produced.
    package var lost: UInt64
    /// What returning the old producer's freed memory to the system took (`malloc_trim`).
    package var trimSeconds: Double
}

/// Why a producer is replaced.
package enum ReplacementReason: Sendable {
    /// It failed fatally: a restart, counted as one.
    case restart
    /// SIGHUP: new properties and live settings.
    case reload
}

/// A replacement that was not carried out.
package enum ReplacementSkipped: Error, CustomStringConvertible {
    /// A stop was asked for: the drain deals with the producer in place.
    case stopping
    /// The generation the decision was about is no longer in place (a reload or
    /// another restart replaced it meanwhile).
    case superseded(expected: Int, current: Int)

    package var description: String {
        switch self {
        case .stopping: "a stop is in progress"
        case .superseded(let expected, let current):
            "generation \(expected) was already replaced (generation \(current) is in place)"
        }
    }
}

extension TransmitWorker {
    /// A new producer generation for this worker (not yet published).
    func makeGeneration(number: Int, kafka: KafkaProperties) throws -> ProducerGeneration {
        try ProducerGeneration(
            number: number,
            properties: kafka,
            topic: topic,
            clientID: "fastcapa-tx\(index)",
            deliveries: counters,
            partitioner: partitioning == .key ? .librdkafka : .hint,
            reports: deliveryReports == .thread ? .thread : .producer,
            stampsCaptureTime: stampsCaptureTime,
            bundlePool: bundler?.pool
        )
    }

    /// Builds the next producer generation, publishes it (with `live`) through
    /// RCU, waits for the grace period, then retires the old producer into it and
    /// releases it, all on the owner thread (awaited, cancellably).
    ///
    /// - Parameters:
    ///   - expecting: the generation the decision is about; when another is in
    ///     place by the time it runs, nothing is replaced (`superseded`).
    ///   - retireTimeoutMs: how long the retirement may take when no stop comes.
    /// Nothing starts once a stop was asked for (`stopping`); a stop asked for
    /// during the retirement brings its deadline forward to the stop's.
    package func replaceProducer(
        kafka: KafkaProperties,
        live: ReloadableSettings,
        reason: ReplacementReason,
        expecting: Int? = nil,
        retireTimeoutMs: Int = 30_000
    ) async throws -> ProducerReplacement {
        try await owner.run { [self] in
            try replaceOnOwner(
                kafka: kafka,
                live: live,
                reason: reason,
                expecting: expecting,
                retireTimeoutMs: retireTimeoutMs
            )
        }
    }

    private func replaceOnOwner(
        kafka: KafkaProperties,
        live: ReloadableSettings,
        reason: ReplacementReason,
        expecting: Int?,
        retireTimeoutMs: Int
    ) throws -> ProducerReplacement {
        guard !control.stopRequested else { throw ReplacementSkipped.stopping }
        let current = producer.generation.number
        if let expecting, expecting != current {
            throw ReplacementSkipped.superseded(expected: expecting, current: current)
        }
        let next = try makeGeneration(number: current + 1, kafka: kafka)
        var old: ProducerGeneration? = producer.replace(with: next, live: live)
        // From here only this thread touches the old producer.
        let limit = ProducerGeneration.monotonicMillis() + retireTimeoutMs
        let control = self.control
        let retirement = old!.retire(to: next, countingInto: retiredCounters[0]) {
            min(limit, control.stopDeadlineMillis)
        }
        old = nil  // released here, on the owner thread: its producer is destroyed now
        // Its queues (up to queue.buffering.max.kbytes, tens of MB after an
        // outage) were freed into the arenas of threads that are gone; glibc keeps
        // such free memory, arena by arena, so each generation's peak would stay
        // in the RSS (Reliability.md, "Soak"). Give it back to the system.
        let trimStarted = Self.seconds()
        _ = CLinux_malloc_trim(0)
        let trimSeconds = Self.seconds() - trimStarted
        switch reason {
        case .restart: restartCount.add(1, ordering: .relaxed)
        case .reload: reloadCount.add(1, ordering: .relaxed)
        }
        return ProducerReplacement(
            worker: index,
            newGeneration: next.number,
            reproduced: retirement.reproduced,
            lost: retirement.lost,
            trimSeconds: trimSeconds
        )
    }

    /// Testing aid (`--testing-fault-signals`): runs `body` on the producer in
    /// place, on the owner thread.
    package func withCurrentGeneration(_ body: @escaping @Sendable (ProducerGeneration) -> Void) async throws {
        try await owner.run { [self] in body(producer.generation) }
    }

    /// Shutdown, once the lcores have returned: waits for a replacement in
    /// progress (bounded by the stop's deadline), then flushes the producer in
    /// place until `deadline` (monotonic ms). Returns true when all was delivered.
    package func flushForShutdown(deadline: Int, purgeDeadline: Int) -> Bool {
        owner.sync { producer.generation.flushForShutdown(deadline: deadline, purgeDeadline: purgeDeadline) }
    }

    /// Releases the producer in place, on the owner thread.
    func releaseProducer() {
        owner.sync { producer.releaseGeneration() }
    }

    static func seconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
