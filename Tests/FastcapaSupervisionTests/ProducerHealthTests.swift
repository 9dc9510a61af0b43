import FastcapaSupervision
import Testing

@Suite struct ProducerHealthTests {
    typealias Observation = ProducerHealth.Observation

    static func observation(
        _ now: Double,
        fatal: Bool = false,
        down: UInt64 = 0,
        delivered: UInt64 = 0,
        inFlight: UInt64 = 0,
        rtt: Double? = nil
    ) -> Observation {
        Observation(
            now: now,
            fatal: fatal,
            allBrokersDownReports: down,
            delivered: delivered,
            inFlight: inFlight,
            roundTripMs: rtt
        )
    }

    @Test func aFatalErrorRestartsAtOnceThenBacksOffUpToTheCap() {
        var policy = ProducerHealth.Policy()
        policy.backoffBase = 0.1
        policy.backoffCap = 1
        policy.maxRestarts = 100
        var health = ProducerHealth(policy: policy)
        var delays: [Double] = []
        var now = 0.0
        for _ in 0..<8 {
            let actions = health.observe(Self.observation(now, fatal: true))
            #expect(actions.first == .report(.restarting))
            guard case .restart(let delay)? = actions.last else {
                Issue.record("no restart in \(actions)")
                return
            }
            delays.append(delay)
            // Asking again while the restart is under way does nothing more.
            #expect(health.observe(Self.observation(now + 0.001, fatal: true)).isEmpty)
            now += delay + 0.01
            health.restartFinished(at: now)
            // The next tick sees the new producer working.
            #expect(health.observe(Self.observation(now + 0.001)) == [.report(.healthy)])
        }
        #expect(delays == [0, 0.1, 0.2, 0.4, 0.8, 1, 1, 1])
        #expect(health.restarts == 8)
        // A quiet minute later, the next restart is immediate again.
        #expect(health.observe(Self.observation(now + 61, fatal: true)).last == .restart(afterSeconds: 0))
    }

    @Test func tooManyRestartsReportUnhealthy() {
        var policy = ProducerHealth.Policy()
        policy.maxRestarts = 3
        var health = ProducerHealth(policy: policy)
        for second in 0..<3 {
            _ = health.observe(Self.observation(Double(second), fatal: true))
            health.restartFinished(at: Double(second))
        }
        let actions = health.observe(Self.observation(3.5))
        #expect(actions == [.report(.unhealthy("3 restarts in 60 s"))])
        #expect(health.observe(Self.observation(70)) == [.report(.healthy)])
    }

    @Test func brokersDownIsDegradedUntilDeliveriesResumeWithoutARestart() {
        var health = ProducerHealth()
        #expect(health.observe(Self.observation(0, delivered: 10)).isEmpty)
        #expect(
            health.observe(Self.observation(1, down: 1, delivered: 10, inFlight: 5)) == [
                .report(.degraded("all brokers down"))
            ]
        )
        #expect(health.observe(Self.observation(2, down: 1, delivered: 10, inFlight: 50)).isEmpty)
        #expect(health.observe(Self.observation(3, down: 1, delivered: 60, inFlight: 0)) == [.report(.healthy)])
        #expect(health.restarts == 0)
    }

    @Test func stallsAndSlowBrokersAreDegraded() {
        var policy = ProducerHealth.Policy()
        policy.stallSeconds = 5
        policy.slowRoundTripMs = 200
        var health = ProducerHealth(policy: policy)
        _ = health.observe(Self.observation(0, delivered: 1, inFlight: 3))
        #expect(health.observe(Self.observation(4, delivered: 1, inFlight: 3)).isEmpty)
        #expect(
            health.observe(Self.observation(5, delivered: 1, inFlight: 3)) == [
                .report(.degraded("no delivery for 5 s with 3 messages waiting"))
            ]
        )
        #expect(health.observe(Self.observation(6, delivered: 2, inFlight: 0)) == [.report(.healthy)])
        #expect(
            health.observe(Self.observation(7, delivered: 3, rtt: 450)) == [
                .report(.degraded("broker round trip 450 ms"))
            ]
        )
        #expect(health.observe(Self.observation(8, delivered: 4, rtt: 20)) == [.report(.healthy)])
    }
}
