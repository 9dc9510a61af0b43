/// The seams the end-to-end tests and the benchmarks use to reach states a healthy run does not show.
///
/// The command line builds the one value (`CaptureOptions.testingHooks`) and hands it to the pipeline
/// and the supervisor. Reading the flag and the environment is compiled into test builds only
/// (`FASTCAPA_TESTING_HOOKS`: debug builds, and a release build made with FASTCAPA_TESTING_HOOKS=1 in
/// its environment, as Scripts/bench does); a shipped binary has neither the flag nor the variables,
/// and every run gets `.none`.
package struct TestingHooks: Sendable, Equatable {
    /// `--testing-fault-signals`: SIGUSR2 makes every producer fail fatally, as a fenced
    /// idempotent producer does.
    package var faultSignals = false
    /// `FASTCAPA_TESTING_MISCOUNT=delivery`: after the drain, one delivery report is counted
    /// twice, as a bug in the delivery callback would, so that a test sees the accounting catch it.
    package var miscountDelivery = false
    /// `FASTCAPA_TESTING_FILTER_SWAP_DELAY_MS`: a SIGHUP's filter swap waits this long before it
    /// publishes, so that a stop can land during it.
    package var filterSwapDelayMs = 0
    /// `FASTCAPA_LEVER_SPLIT_WORKERS` (set): a queue's receive and transmit loops get an lcore each
    /// even where the lcore map would co-schedule them (the benchmark's baseline for co-scheduling).
    package var splitWorkers = false

    package static let none = TestingHooks()

    package init() {}

    /// Whether this build reads the seams at all.
    package static var compiledIn: Bool {
        #if FASTCAPA_TESTING_HOOKS
        return true
        #else
        return false
        #endif
    }

    #if FASTCAPA_TESTING_HOOKS
    /// The seams given by the flag and the environment.
    package init(faultSignals: Bool, environment: [String: String]) {
        self.faultSignals = faultSignals
        miscountDelivery = environment["FASTCAPA_TESTING_MISCOUNT"] == "delivery"
        filterSwapDelayMs = max(Int(environment["FASTCAPA_TESTING_FILTER_SWAP_DELAY_MS"] ?? "") ?? 0, 0)
        splitWorkers = environment["FASTCAPA_LEVER_SPLIT_WORKERS"] != nil
    }
    #endif
}
