import Dispatch
import FastcapaCapture
import FastcapaKafka
import Foundation
import Synchronization

/// The one owner that samples the running capture: the per-lcore counters, the
/// rings, each worker's current producer (through RCU, as the lcores read it)
/// and the NICs (rte_eth_stats_get and xstats are not thread-safe: nothing else
/// calls them). It samples on a thread of its own, at a fixed cadence and once
/// more at the end, and publishes an immutable `Snapshot` behind a lock.
///
/// Everyone else reads only that snapshot: the producer supervisors (health),
/// the metrics exporter and /health, the statistics table and -s, the counter
/// trace, --idle-exit and the final accounting. A reader therefore never touches
/// the pipeline's memory, and once `stop` returns nothing does: the pipeline can
/// be released while a scrape still renders the last snapshot.
package final class PipelineMonitor: Sendable {
    package struct Snapshot: Sendable {
        /// Counts the samples: 0 before the first.
        package var sequence = 0
        package var capture = CaptureSnapshot(perQueue: [], perWorker: [])
        /// Each producer supervisor's state, as last reported.
        package var states: [HealthState] = []
        /// The drivers' extended statistics (JSON keyed by port), as last read.
        package var extendedJSON = "{}"
        /// The last sample, taken after the drain.
        package var final = false
        /// Monotonic seconds when it was taken.
        package var uptime: Double = 0

        /// The run publishes to the embedded broker (no broker was configured).
        package var embeddedBroker = false

        /// The probe's health: the worst of its producers', with the restarts carried out, degraded by the
        /// embedded broker and by links that are down.
        package var health: HealthSummary {
            HealthSummary.worst(
                states,
                restarts: capture.restarts.reduce(0, +),
                conditions: HealthSummary.conditions(embeddedBroker: embeddedBroker, links: capture.links)
            )
        }
    }

    private let pipeline: CapturePipeline
    private let cadenceMs: Int
    private let extendedIntervalMs: Int?
    private let onStatistics: @Sendable (Int, String) -> Void
    private let onSample: @Sendable (Snapshot) -> Void
    private let published: Mutex<Snapshot>
    private let states: Mutex<[HealthState]>
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let started = DispatchSemaphore(value: 0)
    private let ended = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(false)

    /// - Parameters:
    ///   - cadenceMs: time between samples.
    ///   - extendedIntervalMs: read the drivers' extended statistics this often (nil: never).
    ///   - onStatistics: librdkafka's statistics JSON (worker, JSON), on the monitor's thread.
    ///   - onSample: each snapshot as it is published, on the monitor's thread.
    ///   - embeddedBroker: the run publishes to the embedded broker (health says so).
    package init(
        pipeline: CapturePipeline,
        embeddedBroker: Bool = false,
        cadenceMs: Int = 100,
        extendedIntervalMs: Int? = nil,
        onStatistics: @escaping @Sendable (Int, String) -> Void = { _, _ in },
        onSample: @escaping @Sendable (Snapshot) -> Void = { _ in }
    ) {
        self.pipeline = pipeline
        self.cadenceMs = max(cadenceMs, 1)
        self.extendedIntervalMs = extendedIntervalMs
        self.onStatistics = onStatistics
        self.onSample = onSample
        var first = Snapshot()
        first.embeddedBroker = embeddedBroker
        published = Mutex(first)
        states = Mutex(Array(repeating: .healthy, count: pipeline.transmitWorkers.count))
    }

    /// The latest snapshot.
    package var snapshot: Snapshot { published.withLock { $0 } }

    /// A producer supervisor's state, for the next snapshot.
    package func report(worker: Int, state: HealthState) {
        states.withLock { if worker < $0.count { $0[worker] = state } }
    }

    /// Starts sampling; returns once the first snapshot is published.
    package func start() {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in sampleUntilStopped() }
        thread.start()
        started.wait()
    }

    /// Takes one last sample, stops the thread and returns that sample. After it,
    /// nothing reads the pipeline (call it before releasing the pipeline).
    @discardableResult
    package func stop() -> Snapshot {
        if running.load(ordering: .acquiring), !stopping.exchange(true, ordering: .acquiringAndReleasing) {
            wake.signal()
            ended.wait()
        }
        return snapshot
    }

    private func sampleUntilStopped() {
        CapturePipeline.registerSamplerThread()
        defer { CapturePipeline.unregisterSamplerThread() }
        var sampler = Sampler(workers: pipeline.transmitWorkers.count)
        var lastExtended = -Double.infinity
        var first = true
        while true {
            let final = stopping.load(ordering: .acquiring)
            let now = ProcessInfo.processInfo.systemUptime
            let extended =
                extendedIntervalMs.map { final || (now - lastExtended) * 1000 >= Double($0) } ?? false
            if extended { lastExtended = now }
            let taken = pipeline.sample(extended: extended) { worker, json in
                sampler.statistics(worker: worker, json: json)
                onStatistics(worker, json)
            }
            let snapshot = published.withLock { current in
                var next = current
                next.sequence += 1
                next.capture = sampler.withRoundTrips(taken.snapshot)
                next.states = states.withLock { $0 }
                if let json = taken.extendedJSON { next.extendedJSON = json }
                next.final = final
                next.uptime = now
                current = next
                return next
            }
            onSample(snapshot)
            if first {
                first = false
                started.signal()
            }
            if final { break }
            _ = wake.wait(timeout: .now() + .milliseconds(cadenceMs))
        }
        ended.signal()
    }

    /// What the sampler keeps between samples: each worker's latest broker round
    /// trip, which librdkafka posts about once a second, forgotten when its
    /// generation is replaced.
    private struct Sampler {
        var roundTrips: [Double?]
        var generations: [Int]
        var fresh: [Double?]

        init(workers: Int) {
            roundTrips = Array(repeating: nil, count: workers)
            generations = Array(repeating: 0, count: workers)
            fresh = Array(repeating: nil, count: workers)
        }

        mutating func statistics(worker: Int, json: String) {
            fresh[worker] = LibrdkafkaStatistics.slowestRoundTripMs(json)
        }

        mutating func withRoundTrips(_ snapshot: CaptureSnapshot) -> CaptureSnapshot {
            var snapshot = snapshot
            for index in snapshot.producers.indices where index < roundTrips.count {
                if snapshot.producers[index].generation != generations[index] {
                    generations[index] = snapshot.producers[index].generation
                    roundTrips[index] = nil
                }
                if let value = fresh[index] { roundTrips[index] = value }
                fresh[index] = nil
                snapshot.producers[index].roundTripMs = roundTrips[index]
            }
            return snapshot
        }
    }
}
