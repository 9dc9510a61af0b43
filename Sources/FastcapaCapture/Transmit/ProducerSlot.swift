import CURCU
import FastcapaKafka

/// What a transmit worker reads through RCU once per burst: its producer and
/// the live settings, in memory RCU readers can hold without reference counting.
struct WorkerRecord {
    var producer: ProducerEndpoint
    var snapLength: Int
    var queueFullRetries: Int
}

/// A transmit worker's current producer and live settings behind one
/// RCU-protected pointer (liburcu, QSBR).
///
/// The worker dereferences it once per burst and announces a quiescent state
/// once per loop; `replace` publishes a new record with one pointer swap, waits
/// for a grace period (off the lcores: it blocks), and hands back the old
/// generation for retirement. The worker never waits for a swap.
package final class ProducerSlot: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    package private(set) var generation: ProducerGeneration
    package private(set) var live: LiveSettings
    private var record: UnsafeMutablePointer<WorkerRecord>

    init(_ generation: ProducerGeneration, live: LiveSettings) {
        self.generation = generation
        self.live = live
        record = Self.makeRecord(generation, live)
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: UnsafeMutableRawPointer(record))
    }

    private static func makeRecord(
        _ generation: ProducerGeneration,
        _ live: LiveSettings
    ) -> UnsafeMutablePointer<WorkerRecord> {
        let record = UnsafeMutablePointer<WorkerRecord>.allocate(capacity: 1)
        record.initialize(
            to: WorkerRecord(
                producer: generation.endpoint,
                snapLength: live.snapLength,
                queueFullRetries: live.queueFullRetries
            )
        )
        return record
    }

    /// Publishes `newGeneration` and `live`, waits until no worker can still see
    /// the old record, and returns the old generation. Blocks: never call it on
    /// a registered RCU reader thread or on Swift's cooperative pool.
    func replace(with newGeneration: ProducerGeneration, live: LiveSettings) -> ProducerGeneration {
        let newRecord = Self.makeRecord(newGeneration, live)
        CURCU_rcu_assign_pointer(pointer, UnsafeMutableRawPointer(newRecord))
        CURCU_synchronize_rcu()
        record.deinitialize(count: 1)
        record.deallocate()
        record = newRecord
        let old = generation
        generation = newGeneration
        self.live = live
        return old
    }

    deinit {
        record.deallocate()
        pointer.deallocate()
    }
}
