/// What the process asks of the control plane (the command line turns signals into these).
package enum ControlEvent: Sendable, Equatable {
    /// Stop gracefully (SIGINT, SIGTERM).
    case stop(signal: Int32)
    /// Read the configuration again and apply it (SIGHUP).
    case reload
    /// Testing aid: make every producer fail fatally (SIGUSR2 with --testing-fault-signals).
    case injectFault
}

/// Why the control plane stopped.
package enum StopReason: Sendable, CustomStringConvertible {
    case signal(Int32)
    case idle(seconds: Int)
    /// The supervised services ended on their own (one of them failed).
    case servicesEnded

    package var description: String {
        switch self {
        case .signal(let number): "signal \(number)"
        case .idle(let seconds): "no packet for \(seconds) s"
        case .servicesEnded: "the supervised services ended"
        }
    }
}
