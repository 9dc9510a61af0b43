import CURCU
import FastcapaKafka

/// What a transmit worker needs of its producer, in memory that RCU readers
/// can hold without reference counting.
public struct ProducerHandles {
    public var kafka: OpaquePointer
    public var topic: OpaquePointer
}

/// A transmit worker's current producer behind one RCU-protected pointer.
///
/// The worker dereferences it once per burst and announces a quiescent state
/// once per loop; a supervisor swaps in a new producer with `replace`, which
/// waits for a grace period (off the lcores) before handing back the old one
/// for retirement. The worker never waits for the swap.
public final class ProducerSlot: @unchecked Sendable {
    /// The RCU-protected pointer (to a `ProducerHandles`).
    let pointer: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    public private(set) var producer: KafkaProducer
    private var handles: UnsafeMutablePointer<ProducerHandles>

    public init(_ producer: KafkaProducer) {
        self.producer = producer
        handles = .allocate(capacity: 1)
        handles.initialize(to: ProducerHandles(kafka: producer.handle, topic: producer.topic))
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: UnsafeMutableRawPointer(handles))
    }

    /// Publishes `newProducer`, waits until no worker can still see the old one,
    /// and returns the old one. Must not run on a registered RCU reader thread.
    public func replace(with newProducer: KafkaProducer) -> KafkaProducer {
        let newHandles = UnsafeMutablePointer<ProducerHandles>.allocate(capacity: 1)
        newHandles.initialize(to: ProducerHandles(kafka: newProducer.handle, topic: newProducer.topic))
        cur_assign(pointer, UnsafeMutableRawPointer(newHandles))
        cur_synchronize()
        handles.deallocate()
        handles = newHandles
        let old = producer
        producer = newProducer
        return old
    }

    deinit {
        handles.deallocate()
        pointer.deallocate()
    }
}
