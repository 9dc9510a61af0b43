import CURCU
import Synchronization

/// What a receive lcore applies to each packet the capture filter kept, and a
/// reload may change: the flow cutoff and the duplicate window. The flow tables
/// and duplicate windows themselves are made at start and kept across reloads.
package struct ReceiveRules: Sendable, Equatable {
    /// nil: no cutoff (the flow tables, if any, are left alone).
    package var cutoff: FlowCutoff?
    /// 0: no duplicate removal.
    package var dedupWindowMicros: UInt64

    package init(cutoff: FlowCutoff? = nil, dedupWindowMicros: UInt64 = 0) {
        self.cutoff = cutoff
        self.dedupWindowMicros = dedupWindowMicros
    }
}

/// The receive rules every receive worker reads, behind one RCU-protected
/// pointer (liburcu, QSBR), as `FilterSlot` holds the filter: a lcore
/// dereferences it once per burst; `replace` swaps the pointer, waits for a
/// grace period and frees the old record. Never blocks an lcore.
package final class ReceiveRulesSlot: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// The published record's address (a value, so that the lock holds nothing non-Sendable).
    private let published: Mutex<UInt>

    init(_ rules: ReceiveRules) {
        let record = Self.makeRecord(rules)
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: UnsafeMutableRawPointer(record))
        published = Mutex(UInt(bitPattern: record))
    }

    private static func makeRecord(_ rules: ReceiveRules) -> UnsafeMutablePointer<ReceiveRules> {
        let record = UnsafeMutablePointer<ReceiveRules>.allocate(capacity: 1)
        record.initialize(to: rules)
        return record
    }

    private static func record(at address: UInt) -> UnsafeMutablePointer<ReceiveRules> {
        UnsafeMutablePointer(bitPattern: address)!
    }

    /// The rules in force.
    package var current: ReceiveRules { published.withLock { Self.record(at: $0).pointee } }

    /// Publishes `next`, waits until no receive lcore can hold the old record, then frees it.
    /// Blocks for a grace period: never on an lcore or Swift's cooperative pool.
    package func replace(with next: ReceiveRules) {
        let record = Self.makeRecord(next)
        let old = published.withLock { current in
            CURCU_rcu_assign_pointer(pointer, UnsafeMutableRawPointer(record))
            let unpublished = current
            current = UInt(bitPattern: record)
            return unpublished
        }
        CURCU_synchronize_rcu()
        Self.record(at: old).deinitialize(count: 1).deallocate()
    }

    deinit {
        Self.record(at: published.withLock { $0 }).deinitialize(count: 1).deallocate()
        pointer.deallocate()
    }
}
