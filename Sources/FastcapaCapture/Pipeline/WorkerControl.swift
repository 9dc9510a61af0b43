import CFastcapaShared
import Synchronization

/// Flags the control plane sets and the lcores read, in that order during a stop,
/// and the stop's deadline, which bounds every wait on the owner threads.
final class WorkerControl: @unchecked Sendable {
    let flags: UnsafeMutablePointer<UInt32>
    /// Receive workers return.
    static let stopReceiving = 0
    /// Transmit workers return once their ring is empty.
    static let drain = 1
    /// The drain timeout ran out: every worker gives up its backlog, counting it.
    static let abandon = 2
    static let count = 3

    /// When the stop must be over (monotonic ms); Int.max until one is asked for.
    private let stopDeadline = Atomic<Int>(.max)

    init() {
        flags = .allocate(capacity: Self.count)
        flags.initialize(repeating: 0, count: Self.count)
    }

    func set(_ flag: Int) { fastcapa_flag_store(flags + flag, 1) }
    deinit { flags.deallocate() }

    /// Asks for a stop that ends by `deadline`: no replacement starts from now on,
    /// and one in progress retires its producer by then. The first deadline wins.
    func requestStop(deadline: Int) {
        _ = stopDeadline.compareExchange(expected: .max, desired: deadline, ordering: .sequentiallyConsistent)
    }

    var stopRequested: Bool { stopDeadline.load(ordering: .sequentiallyConsistent) != .max }
    var stopDeadlineMillis: Int { stopDeadline.load(ordering: .sequentiallyConsistent) }
}
