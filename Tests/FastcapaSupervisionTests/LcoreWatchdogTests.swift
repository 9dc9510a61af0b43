import FastcapaCapture
import Testing

@testable import FastcapaSupervision

/// systemd's watchdog is fed only while every running worker lcore turns its loop.
@Suite struct LcoreWatchdogTests {
    static func lcores(_ loops: [UInt64], running: [Bool]? = nil) -> [LcoreProgress] {
        loops.enumerated().map { index, count in
            LcoreProgress(
                lcore: UInt32(index + 1),
                loop: "loop \(index + 1)",
                loops: count,
                running: running?[index] ?? true
            )
        }
    }

    @Test func systemdAsksForItWithWatchdogUsecForThisProcess() {
        #expect(LcoreWatchdog.requested(environment: [:], pid: 7) == nil)
        #expect(LcoreWatchdog.requested(environment: ["WATCHDOG_USEC": "0"], pid: 7) == nil)
        #expect(LcoreWatchdog.requested(environment: ["WATCHDOG_USEC": "soon"], pid: 7) == nil)
        #expect(LcoreWatchdog.requested(environment: ["WATCHDOG_USEC": "30000000"], pid: 7)?.interval == 15)
        #expect(
            LcoreWatchdog.requested(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"], pid: 7) != nil
        )
        // Meant for another process (a parent that passed its environment on).
        #expect(
            LcoreWatchdog.requested(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"], pid: 7) == nil
        )
    }

    @Test func aCheckIsDueEveryIntervalAndFeedsOnlyWhileEveryLcoreMoves() throws {
        var watchdog = LcoreWatchdog(timeoutMicros: 2_000_000)
        let first = watchdog.check(Self.lcores([0, 0]), now: 10)
        #expect(first?.alive == true, "the first check feeds")
        #expect(watchdog.check(Self.lcores([5, 5]), now: 10.5) == nil, "not due before the interval")
        let moving = watchdog.check(Self.lcores([9, 9]), now: 11)
        #expect(moving?.alive == true)
        // Lcore 2 has not moved since the last check (not the last sample): stuck, reported once.
        let stuckDecision = watchdog.check(Self.lcores([12, 9]), now: 12)
        let stuck = try #require(stuckDecision)
        #expect(!stuck.alive && stuck.newlyStuck.map(\.lcore) == [2] && stuck.recovered.isEmpty)
        let stillDecision = watchdog.check(Self.lcores([15, 9]), now: 13)
        let still = try #require(stillDecision)
        #expect(!still.alive && still.newlyStuck.isEmpty, "reported once")
        let againDecision = watchdog.check(Self.lcores([18, 10]), now: 14)
        let again = try #require(againDecision)
        #expect(again.alive && again.recovered.map(\.lcore) == [2])
    }

    /// A loop that has returned (the drain) is stopped, not stuck: the watchdog goes on being fed.
    @Test func aLoopThatReturnedIsNotStuck() throws {
        var watchdog = LcoreWatchdog(timeoutMicros: 2_000_000)
        _ = watchdog.check(Self.lcores([4, 4]), now: 0)
        let drainingDecision = watchdog.check(Self.lcores([4, 4], running: [false, false]), now: 1)
        let draining = try #require(drainingDecision)
        #expect(draining.alive && draining.newlyStuck.isEmpty)
    }
}
