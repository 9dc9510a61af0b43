import FastcapaCapture

/// systemd's watchdog (`WatchdogSec=` in the unit): the probe says it is alive
/// (`WATCHDOG=1`) only while every running worker lcore turns its loop, so that a
/// probe whose lcore hangs (a driver call that never returns, a deadlock) stops
/// saying so and systemd restarts it. A loop that has returned (the drain) is not
/// stuck. The checks follow the sampler: a hung sampler stops them too.
package struct LcoreWatchdog: Sendable {
    /// Seconds between two checks (and so between two `WATCHDOG=1`): half of systemd's timeout.
    package let interval: Double
    private var lastCheck: Double?
    private var lastLoops: [UInt32: UInt64] = [:]
    /// Lcores found stuck and not yet moving again (each is reported once).
    private var stuck: Set<UInt32> = []

    /// What a check found.
    package struct Decision: Equatable, Sendable {
        /// Every running lcore moved since the last check: send `WATCHDOG=1`.
        package var alive: Bool
        /// Lcores found stuck at this check, not reported before.
        package var newlyStuck: [LcoreProgress]
        /// Lcores reported stuck before that move again.
        package var recovered: [LcoreProgress]
    }

    /// - Parameter timeoutMicros: systemd's `$WATCHDOG_USEC`.
    package init(timeoutMicros: UInt64) {
        interval = max(Double(timeoutMicros) / 2_000_000, 0.001)
    }

    /// The watchdog systemd asked for: `$WATCHDOG_USEC`, for this process (`$WATCHDOG_PID`, when
    /// set, names it), or nil when there is none.
    package static func requested(environment: [String: String], pid: Int32) -> LcoreWatchdog? {
        guard let text = environment["WATCHDOG_USEC"], let micros = UInt64(text), micros > 0 else { return nil }
        if let owner = environment["WATCHDOG_PID"], !owner.isEmpty, owner != "\(pid)" { return nil }
        return LcoreWatchdog(timeoutMicros: micros)
    }

    /// At each sample: nil until a check is due; then whether every running lcore moved since the last one.
    package mutating func check(_ lcores: [LcoreProgress], now: Double) -> Decision? {
        if let last = lastCheck, now - last < interval { return nil }
        let first = lastCheck == nil
        lastCheck = now
        // Compared with the last check, not the last sample: a whole interval to turn once.
        defer { lastLoops = Dictionary(lcores.map { ($0.lcore, $0.loops) }, uniquingKeysWith: { $1 }) }
        if first { return Decision(alive: true, newlyStuck: [], recovered: []) }
        let stuckNow = lcores.filter { $0.running && lastLoops[$0.lcore] == $0.loops }
        let ids = Set(stuckNow.map(\.lcore))
        let decision = Decision(
            alive: stuckNow.isEmpty,
            newlyStuck: stuckNow.filter { !stuck.contains($0.lcore) },
            recovered: lcores.filter { stuck.contains($0.lcore) && !ids.contains($0.lcore) }
        )
        stuck = ids
        return decision
    }
}
