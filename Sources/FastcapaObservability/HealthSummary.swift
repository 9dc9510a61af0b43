import FastcapaCapture

/// The probe's health: the worst of its producers', degraded further by what
/// is wrong with the probe itself (`conditions`): publishing to the embedded
/// broker, a port whose link is down.
package struct HealthSummary: Sendable, CustomStringConvertible {
    package var state: HealthState
    package var restarts: Int
    package init(state: HealthState = .healthy, restarts: Int = 0) {
        self.state = state
        self.restarts = restarts
    }
    package var description: String { "\(state), \(restarts) restarts" }

    /// The worst of `states`; then each condition's reason after the producers' own (healthy becomes degraded,
    /// a degraded or unhealthy state keeps its level and gains the reasons; `restarting` says nothing more).
    package static func worst(
        _ states: [HealthState],
        restarts: Int,
        conditions: [String] = []
    ) -> HealthSummary {
        let worst = states.max { $0.severity < $1.severity } ?? .healthy
        let reasons = conditions.joined(separator: "; ")
        let state: HealthState =
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

/// A producer's health (`ProducerHealth` decides it), or the probe's (`HealthSummary`, the worst of them).
package enum HealthState: Sendable, Equatable, CustomStringConvertible {
    case healthy
    case degraded(String)
    case restarting
    case unhealthy(String)

    package var description: String {
        switch self {
        case .healthy: "healthy"
        case .degraded(let reason): "degraded: \(reason)"
        case .restarting: "restarting"
        case .unhealthy(let reason): "unhealthy: \(reason)"
        }
    }

    var severity: Int {
        switch self {
        case .healthy: 0
        case .degraded: 1
        case .restarting: 2
        case .unhealthy: 3
        }
    }
}
