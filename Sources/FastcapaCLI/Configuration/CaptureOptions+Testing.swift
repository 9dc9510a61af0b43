import FastcapaCapture
import Foundation

extension CaptureOptions {
    /// The one place the test seams are read: `--testing-fault-signals` and the FASTCAPA_TESTING_*
    /// and FASTCAPA_LEVER_* variables, in a test build; `.none` in a release build.
    var testingHooks: TestingHooks {
        #if FASTCAPA_TESTING_HOOKS
        return TestingHooks(faultSignals: testingFaultSignals, environment: ProcessInfo.processInfo.environment)
        #else
        return .none
        #endif
    }
}
