import CDPDK
import CURCU
import FastcapaKafka

/// Settings a transmit worker reads on every burst, and that a reload can change
/// without stopping it.
public struct LiveSettings: Sendable, Equatable {
    public var snapLength: Int
    public var queueFullRetries: Int

    public init(snapLength: Int, queueFullRetries: Int) {
        self.snapLength = snapLength
        self.queueFullRetries = queueFullRetries
    }

    public init(_ settings: CaptureSettings) {
        self.init(snapLength: settings.snapLength, queueFullRetries: settings.queueFullRetries)
    }
}

/// What a transmit worker reads through RCU once per burst: its producer and
/// the live settings, in memory RCU readers can hold without reference counting.
struct WorkerRecord {
    var kafka: OpaquePointer
    var topic: OpaquePointer
    var context: UnsafeMutablePointer<cfc_producer_context>
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
public final class ProducerSlot: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    public private(set) var generation: ProducerGeneration
    public private(set) var live: LiveSettings
    private var record: UnsafeMutablePointer<WorkerRecord>

    init(_ generation: ProducerGeneration, live: LiveSettings) {
        self.generation = generation
        self.live = live
        record = Self.makeRecord(generation, live)
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: UnsafeMutableRawPointer(record))
    }

    private static func makeRecord(_ generation: ProducerGeneration, _ live: LiveSettings) -> UnsafeMutablePointer<WorkerRecord> {
        let record = UnsafeMutablePointer<WorkerRecord>.allocate(capacity: 1)
        record.initialize(to: WorkerRecord(
            kafka: generation.producer.handle, topic: generation.producer.topic, context: generation.context,
            snapLength: live.snapLength, queueFullRetries: live.queueFullRetries))
        return record
    }

    /// Publishes `newGeneration` and `live`, waits until no worker can still see
    /// the old record, and returns the old generation. Blocks: never call it on
    /// a registered RCU reader thread or on Swift's cooperative pool.
    public func replace(with newGeneration: ProducerGeneration, live: LiveSettings) -> ProducerGeneration {
        let newRecord = Self.makeRecord(newGeneration, live)
        cur_assign(pointer, UnsafeMutableRawPointer(newRecord))
        cur_synchronize()
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
