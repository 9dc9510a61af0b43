import CFastcapaShared

/// Flags the control plane sets and the lcores read, in that order during a stop.
final class WorkerControl: @unchecked Sendable {
    let flags: UnsafeMutablePointer<UInt32>
    /// Receive workers return.
    static let stopReceiving = 0
    /// Transmit workers return once their ring is empty.
    static let drain = 1
    /// The drain timeout ran out: every worker gives up its backlog, counting it.
    static let abandon = 2

    init() {
        flags = .allocate(capacity: 4)
        flags.initialize(repeating: 0, count: 4)
    }

    func set(_ flag: Int) { fastcapa_flag_store(flags + flag, 1) }
    deinit { flags.deallocate() }
}
