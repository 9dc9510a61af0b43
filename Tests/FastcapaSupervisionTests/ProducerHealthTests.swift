import FastcapaSupervision
import Testing

@Suite struct ProducerHealthTests {
    typealias Observation = ProducerHealth.Observation

    static func observation(
        _ now: Double,
        generation: Int = 1,
        fatal: Bool = false,
        down: UInt64 = 0,
        delivered: UInt64 = 0,
        inFlight: UInt64 = 0,
        rtt: Double? = nil
    ) -> Observation {
        Observation(
            now: now,
            generation: generation,
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
        for generation in 1...8 {
            let actions = health.observe(Self.observation(now, generation: generation, fatal: true))
            #expect(actions.first == .report(.restarting))
            guard case .restart(let delay, let about)? = actions.last else {
                Issue.record("no restart in \(actions)")
                return
            }
            #expect(about == generation, "the decision names the generation it is about")
            delays.append(delay)
            // Asking again while the restart is under way does nothing more.
            #expect(health.observe(Self.observation(now + 0.001, generation: generation, fatal: true)).isEmpty)
            now += delay + 0.01
            health.restartFinished(at: now, generation: generation + 1)
            // A sample taken before the swap still shows the failed generation: stale, ignored.
            #expect(health.observe(Self.observation(now, generation: generation, fatal: true)).isEmpty)
            // The next tick sees the new producer working.
            #expect(health.observe(Self.observation(now + 0.001, generation: generation + 1)) == [.report(.healthy)])
        }
        #expect(delays == [0, 0.1, 0.2, 0.4, 0.8, 1, 1, 1])
        #expect(health.restarts == 8)
        // A quiet minute later, the next restart is immediate again.
        #expect(
            health.observe(Self.observation(now + 61, generation: 9, fatal: true)).last
                == .restart(afterSeconds: 0, generation: 9)
        )
    }

    /// A restart decided before a SIGHUP, waiting out its backoff, must not replace the freshly reloaded
    /// producer nor count a restart: the reload has already replaced the generation that failed.
    @Test func aRestartDecisionIsDroppedWhenAReloadReplacedItsGeneration() {
        var health = ProducerHealth()
        _ = health.observe(Self.observation(0, generation: 1, fatal: true))
        health.restartFinished(at: 0.01, generation: 2)
        // Generation 2 fails too: its restart waits out a backoff.
        let actions = health.observe(Self.observation(1, generation: 2, fatal: true))
        #expect(actions.last == .restart(afterSeconds: 0.1, generation: 2))
        // A reload puts generation 3 in place meanwhile.
        health.replaced(by: 3)
        #expect(health.observe(Self.observation(1.05, generation: 3)) == [.report(.healthy)])
        #expect(health.state == .healthy)
        #expect(health.restarts == 1, "only the first restart happened")
        // A late sample of generation 2 changes nothing.
        #expect(health.observe(Self.observation(1.06, generation: 2, fatal: true)).isEmpty)
    }

    @Test func tooManyRestartsReportUnhealthy() {
        var policy = ProducerHealth.Policy()
        policy.maxRestarts = 3
        var health = ProducerHealth(policy: policy)
        for second in 0..<3 {
            _ = health.observe(Self.observation(Double(second), generation: second + 1, fatal: true))
            health.restartFinished(at: Double(second), generation: second + 2)
        }
        let actions = health.observe(Self.observation(3.5, generation: 4))
        #expect(actions == [.report(.unhealthy("3 restarts in 60 s"))])
        // An unhealthy producer that fails again still gets its restart (the state stays unhealthy).
        let again = health.observe(Self.observation(4, generation: 4, fatal: true))
        #expect(again.contains { if case .restart(_, 4) = $0 { true } else { false } }, "\(again)")
        #expect(health.state == .unhealthy("3 restarts in 60 s"))
        #expect(health.restartDecided, "the supervisor keeps the decision while the state says unhealthy")
        health.restartFinished(at: 5, generation: 5)
        #expect(health.observe(Self.observation(70, generation: 5)) == [.report(.healthy)])
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
