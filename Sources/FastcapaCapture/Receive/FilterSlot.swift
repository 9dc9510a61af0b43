import CURCU
import Synchronization

/// The capture filter every receive worker reads, behind one RCU-protected
/// pointer (liburcu, QSBR), the pattern of the transmit workers' `ProducerSlot`.
///
/// A receive lcore dereferences it once per burst (nil: no filter) and announces
/// a quiescent state once per loop; it goes offline while it sleeps. `replace`
/// publishes the new program with one pointer swap, waits for a grace period
/// (it blocks: never on an lcore or Swift's cooperative pool), and only then
/// frees the old program, once. The lcores never wait for a swap, and nothing
/// waits for a grace period to read `current`.
package final class FilterSlot: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let state: Mutex<PacketFilter?>

    init(_ filter: PacketFilter?) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: filter.map { UnsafeMutableRawPointer($0.record) })
        state = Mutex(filter)
    }

    /// The filter in place (nil: every packet passes).
    package var current: PacketFilter? { state.withLock { $0 } }

    /// What a swap did.
    package struct Replacement: Sendable {
        package var old: String?
        package var new: String?
        /// Programs destroyed during the swap: 1 when there was an old one, else 0.
        package var freed: Int
    }

    /// Publishes `next` (nil removes the filter), waits for every receive lcore
    /// to pass a quiescent state, then frees the old program. Swaps may overlap:
    /// each takes the filter it unpublished out of the slot under the lock, with
    /// its pointer swap, so the filter it frees is one no later swap can still be
    /// publishing; the lock is free during the grace period, which starts after
    /// that swap and so outlasts every reader that saw the old filter.
    package func replace(with next: PacketFilter?) -> Replacement {
        var old = state.withLock { current in
            CURCU_rcu_assign_pointer(pointer, next.map { UnsafeMutableRawPointer($0.record) })
            let unpublished = current
            current = next
            return unpublished
        }
        let expression = old?.expression
        // This swap holds the old filter until no lcore can still hold its record; dropping that
        // last reference then frees the program.
        var before = 0
        withExtendedLifetime(old) {
            CURCU_synchronize_rcu()
            before = PacketFilter.destroyedCount.load(ordering: .relaxed)
        }
        old = nil
        let freed = PacketFilter.destroyedCount.load(ordering: .relaxed) - before
        return Replacement(old: expression, new: next?.expression, freed: freed)
    }

    deinit { pointer.deallocate() }
}
