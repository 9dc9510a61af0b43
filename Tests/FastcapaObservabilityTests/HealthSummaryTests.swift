import FastcapaCapture
import FastcapaObservability
import Testing

/// What /health says beyond the producers: the embedded broker and links that are down.
@Suite struct HealthSummaryTests {
    static let links = [Port.Link(port: 0, up: true, speedMbps: 10_000), Port.Link(port: 1, up: false)]

    @Test func theEmbeddedBrokerAndADownLinkDegradeAHealthyProbe() {
        #expect(HealthSummary.conditions(embeddedBroker: false, links: [Self.links[0]]).isEmpty)
        let conditions = HealthSummary.conditions(embeddedBroker: true, links: Self.links)
        #expect(conditions == [HealthSummary.embeddedBrokerReason, "port 1 link down"])
        #expect(HealthSummary.embeddedBrokerReason.contains("embedded broker"))

        #expect(HealthSummary.worst([.healthy, .healthy], restarts: 0).state == .healthy)
        let linkDown = HealthSummary.worst([.healthy], restarts: 2, conditions: ["port 1 link down"])
        #expect(linkDown.state == .degraded("port 1 link down") && linkDown.restarts == 2)
        #expect("\(linkDown.state)" == "degraded: port 1 link down")
    }

    @Test func conditionsAddTheirReasonsWithoutLoweringTheProducersState() {
        let conditions = HealthSummary.conditions(embeddedBroker: true, links: Self.links)
        let both = HealthSummary.embeddedBrokerReason + "; port 1 link down"
        #expect(HealthSummary.worst([.healthy], restarts: 0, conditions: conditions).state == .degraded(both))
        #expect(
            HealthSummary.worst([.degraded("all brokers down")], restarts: 0, conditions: conditions).state
                == .degraded("all brokers down; " + both)
        )
        // Unhealthy stays unhealthy (HTTP 503), with the reasons; restarting stays restarting.
        #expect(
            HealthSummary.worst([.healthy, .unhealthy("10 restarts")], restarts: 10, conditions: conditions).state
                == .unhealthy("10 restarts; " + both)
        )
        #expect(HealthSummary.worst([.restarting], restarts: 1, conditions: conditions).state == .restarting)
    }
}
