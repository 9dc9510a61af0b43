import FastcapaCapture

/// The probe's health: the worst of its producers', degraded further by what
/// is wrong with the probe itself (`conditions`): publishing to the embedded
/// broker, a port whose link is down.
package struct HealthSummary: Sendable, CustomStringConvertible {
    package var state: ProducerHealth.State
    package var restarts: Int
    package init(state: ProducerHealth.State = .healthy, restarts: Int = 0) {
        self.state = state
        self.restarts = restarts
    }
    package var description: String { "\(state), \(restarts) restarts" }

    /// The worst of `states`; then each condition's reason after the producers' own (healthy becomes degraded,
    /// a degraded or unhealthy state keeps its level and gains the reasons; `restarting` says nothing more).
    package static func worst(
        _ states: [ProducerHealth.State],
        restarts: Int,
        conditions: [String] = []
    ) -> HealthSummary {
        let worst = states.max { $0.severity < $1.severity } ?? .healthy
        let reasons = conditions.joined(separator: "; ")
        let state: ProducerHealth.State =
            switch worst {
            case _ where conditions.isEmpty: worst
            case .healthy: .degraded(reasons)
            case .degraded(let reason): .degraded(reason + "; " + reasons)
            case .unhealthy(let reason): .unhealthy(reason + "; " + reasons)
            case .restarting: .restarting
            }
        return HealthSummary(state: state, restarts: restarts)
    }

    /// What degrades the probe beyond its producers: the embedded broker (nothing leaves the process), and
    /// each port whose link is down.
    package static func conditions(embeddedBroker: Bool, links: [Port.Link]) -> [String] {
        (embeddedBroker ? [Self.embeddedBrokerReason] : [])
            + links.filter { !$0.up }.map { "port \($0.port) link down" }
    }

    package static let embeddedBrokerReason =
        "no Kafka broker configured: publishing to the embedded broker, in this process's memory only"
}
