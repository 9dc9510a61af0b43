import CURCU
import FastcapaKafka

/// What a transmit worker (and the sampler) reads through RCU: the producer's raw
/// handles, its generation number and the live settings, in memory RCU readers
/// can hold without reference counting.
struct WorkerRecord {
    var producer: ProducerEndpoint
    var generation: Int
    var snapLength: Int
    var queueFullRetries: Int
}

/// A transmit worker's current producer and live settings behind one
/// RCU-protected pointer (liburcu, QSBR).
///
/// The worker dereferences it once per burst and announces a quiescent state
/// once per loop; the sampler reads it the same way, online only while it reads.
/// `replace` publishes a new record with one pointer swap, waits for a grace
/// period (it blocks), and hands back the old generation for retirement. The
/// generation object itself is held here and touched only on the worker's
/// `GenerationOwner` thread.
package final class ProducerSlot: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let owner: GenerationOwner
    /// Only on the owner thread.
    private var current: ProducerGeneration?
    private var record: UnsafeMutablePointer<WorkerRecord>

    /// Called on the owner thread (or before any other thread can see the slot).
    init(_ generation: ProducerGeneration, live: ReloadableSettings, owner: GenerationOwner) {
        self.owner = owner
        current = generation
        record = Self.makeRecord(generation, live)
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: UnsafeMutableRawPointer(record))
    }

    private static func makeRecord(
        _ generation: ProducerGeneration,
        _ live: ReloadableSettings
    ) -> UnsafeMutablePointer<WorkerRecord> {
        let record = UnsafeMutablePointer<WorkerRecord>.allocate(capacity: 1)
        record.initialize(
            to: WorkerRecord(
                producer: generation.endpoint,
                generation: generation.number,
                snapLength: live.snapLength,
                queueFullRetries: live.queueFullRetries
            )
        )
        return record
    }

    /// The producer in place now. Owner thread only.
    var generation: ProducerGeneration {
        owner.assertOnOwner()
        return current!
    }

    /// Publishes `newGeneration` and `live`, waits until no reader (lcore or
    /// sampler) can still see the old record, and returns the old generation.
    /// Owner thread only: it blocks.
    func replace(with newGeneration: ProducerGeneration, live: ReloadableSettings) -> ProducerGeneration {
        owner.assertOnOwner()
        let newRecord = Self.makeRecord(newGeneration, live)
        CURCU_rcu_assign_pointer(pointer, UnsafeMutableRawPointer(newRecord))
        CURCU_synchronize_rcu()
        record.deinitialize(count: 1)
        record.deallocate()
        record = newRecord
        let old = current!
        current = newGeneration
        return old
    }

    /// Releases the last generation (its producer is destroyed here). Owner
    /// thread only, once no reader runs: the lcores have returned and the sampler
    /// has stopped.
    func releaseGeneration() {
        owner.assertOnOwner()
        current = nil
    }

    deinit {
        record.deinitialize(count: 1)
        record.deallocate()
        pointer.deallocate()
    }
}
