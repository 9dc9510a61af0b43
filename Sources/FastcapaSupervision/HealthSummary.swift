/// The probe's health: the worst of its producers'.
package struct HealthSummary: Sendable, CustomStringConvertible {
    package var state: ProducerHealth.State
    package var restarts: Int
    package init(state: ProducerHealth.State = .healthy, restarts: Int = 0) {
        self.state = state
        self.restarts = restarts
    }
    package var description: String { "\(state), \(restarts) restarts" }

    package static func worst(_ states: [ProducerHealth.State], restarts: Int) -> HealthSummary {
        HealthSummary(state: states.max { $0.severity < $1.severity } ?? .healthy, restarts: restarts)
    }
}
