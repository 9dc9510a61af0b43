import FastcapaCapture
import FastcapaObservability
import FastcapaSupervision
import Foundation
import Synchronization

/// What `systemctl status` shows under the unit's name (`STATUS=`), the
/// stop timeout kept above the stop's bound while it drains
/// (`EXTEND_TIMEOUT_USEC=`), and the watchdog's `WATCHDOG=1` while every worker
/// lcore turns its loop (`LcoreWatchdog`), all sent from the monitor's
/// snapshots. Does nothing when systemd did not ask for notifications.
final class SystemdStatus: Sendable {
    /// Seconds between two messages.
    static let interval = 1.0
    /// Added to what is left of the stop bound in `EXTEND_TIMEOUT_USEC`: the
    /// accounting, releasing ports and EAL.
    static let margin = 5.0

    private struct State {
        /// READY=1 was sent: no status before it.
        var ready = false
        var lastSent: Double?
        var last: (uptime: Double, received: UInt64, delivered: UInt64, dropped: UInt64)?
        /// Monotonic seconds by which a stop ends (set when it begins).
        var stopBound: Double?
        var watchdog: LcoreWatchdog?
    }

    private let enabled: Bool
    private let state: Mutex<State>
    /// Where a stuck lcore (a problem) and its recovery are reported: a log line.
    private let report: @Sendable (_ problem: Bool, _ text: String) -> Void

    init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        report: @escaping @Sendable (_ problem: Bool, _ text: String) -> Void = { _, _ in }
    ) {
        enabled = !(environment["NOTIFY_SOCKET"] ?? "").isEmpty
        var initial = State()
        initial.watchdog = enabled ? LcoreWatchdog.requested(environment: environment, pid: getpid()) : nil
        state = Mutex(initial)
        self.report = report
    }

    /// The watchdog's period, when systemd asked for one (logged at start).
    var watchdogInterval: Double? { state.withLock { $0.watchdog?.interval } }

    /// Each snapshot, on the monitor's thread; sends at most once per `interval`.
    func sample(_ snapshot: PipelineMonitor.Snapshot) {
        guard enabled else { return }
        watch(snapshot)
        let message: String? = state.withLock { state in
            guard state.ready else { return nil }
            if let sent = state.lastSent, snapshot.uptime - sent < Self.interval { return nil }
            state.lastSent = snapshot.uptime
            let capture = snapshot.capture
            let now = (
                uptime: snapshot.uptime, received: capture.rx.received, delivered: capture.tx.delivered,
                dropped: capture.dropped
            )
            defer { state.last = now }
            if let bound = state.stopBound {
                return Self.draining(inFlight: capture.inFlight, left: bound - snapshot.uptime)
            }
            return "STATUS=" + Self.capturing(now, since: state.last, health: snapshot.health)
        }
        if let message { SystemdNotify.send(message) }
    }

    /// `WATCHDOG=1` when a check finds every running lcore moving; a stuck lcore withholds it
    /// (reported once), so that systemd's watchdog restarts the probe.
    private func watch(_ snapshot: PipelineMonitor.Snapshot) {
        let decision: LcoreWatchdog.Decision? = state.withLock { state in
            state.watchdog?.check(snapshot.capture.lcores, now: snapshot.uptime)
        }
        guard let decision, let interval = watchdogInterval else { return }
        for lcore in decision.newlyStuck {
            report(
                true,
                "lcore \(lcore.lcore) (\(lcore.loop)) has not turned its loop in \(interval) s: the probe stops telling systemd's watchdog it is alive (WATCHDOG=1), so that systemd restarts it (WatchdogSec=)"
            )
        }
        for lcore in decision.recovered {
            report(false, "lcore \(lcore.lcore) (\(lcore.loop)) turns its loop again: WATCHDOG=1 resumes")
        }
        if decision.alive { SystemdNotify.send("WATCHDOG=1") }
    }

    /// Capture has started: `READY=1`.
    func ready() {
        state.withLock { $0.ready = true }
        SystemdNotify.send("READY=1\nSTATUS=capturing")
    }

    /// The stop begins: `STOPPING=1`, and the stop timeout extended to the bound.
    /// - Parameter bound: seconds the stop may take (`--drain-timeout` + 5 s).
    func stopping(reason: String, bound: Double) {
        guard enabled else { return }
        let now = ProcessInfo.processInfo.systemUptime
        state.withLock { $0.stopBound = now + bound }
        SystemdNotify.send("STOPPING=1\n" + Self.draining(inFlight: nil, left: bound, reason: reason))
    }

    /// `STATUS=capturing: …` with the rates since the previous message.
    static func capturing(
        _ now: (uptime: Double, received: UInt64, delivered: UInt64, dropped: UInt64),
        since last: (uptime: Double, received: UInt64, delivered: UInt64, dropped: UInt64)?,
        health: HealthSummary
    ) -> String {
        var text = "capturing"
        if let last, now.uptime > last.uptime {
            let seconds = now.uptime - last.uptime
            func rate(_ a: UInt64, _ b: UInt64) -> Int { Int((Double(a &- b) / seconds).rounded()) }
            text +=
                ": \(rate(now.received, last.received)) pkt/s received, \(rate(now.delivered, last.delivered))"
                + " msg/s delivered"
        }
        return text + "; \(now.received) received, \(now.dropped) dropped; \(health.state)"
    }

    /// `EXTEND_TIMEOUT_USEC=` (what is left of the bound, plus the margin) and `STATUS=draining…`.
    static func draining(inFlight: Int?, left: Double, reason: String? = nil) -> String {
        let microseconds = Int((max(left, 0) + margin) * 1_000_000)
        var status = "draining"
        if let reason { status += " (\(reason))" }
        if let inFlight { status += ": \(inFlight) in flight" }
        status += ", at most \(Int(max(left, 0).rounded(.up))) s left"
        return "EXTEND_TIMEOUT_USEC=\(microseconds)\nSTATUS=\(status)"
    }
}
