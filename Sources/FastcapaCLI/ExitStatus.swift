/// Exit statuses of the capture command (documented in the README).
enum ExitStatus {
    static let success: Int32 = 0
    /// The probe could not start: EAL, ports, memory, Kafka producers.
    static let startFailed: Int32 = 1
    /// The accounting did not balance: a bug, please report it.
    static let accountingMismatch: Int32 = 2
    /// A second SIGINT/SIGTERM cut the drain short.
    static let forced: Int32 = 3
    /// Bad command line or configuration (ArgumentParser's usage status).
    static let usage: Int32 = 64
}
