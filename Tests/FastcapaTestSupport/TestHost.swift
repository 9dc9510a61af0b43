import Foundation
import Testing

extension Tag {
    /// Runs the probe as child processes, with DPDK and brokers (FastcapaEndToEndTests).
    @Tag public static var endToEnd: Self
    /// Needs root in the test process itself (veth pairs, network namespaces).
    @Tag public static var root: Self
}

/// What this host lets the tests do. `swift test` as an ordinary user runs the unit tests and
/// skips, saying why, what needs root; `Scripts/test` sets FASTCAPA_TEST_EVERYTHING=1, so that
/// there nothing is skipped for want of root: such a test runs and fails instead.
public enum TestHost {
    public static let isRoot = geteuid() == 0
    public static let mustRunEverything = ProcessInfo.processInfo.environment["FASTCAPA_TEST_EVERYTHING"] == "1"
    /// Whether tests that need root run here.
    public static var runsRootTests: Bool { isRoot || mustRunEverything }
    public static let rootReason: Comment =
        "needs root (DPDK's runtime files under /var/run/dpdk, veth pairs, network namespaces): run Scripts/test as root"
}

extension Trait where Self == ConditionTrait {
    /// The test or suite needs root: skipped, with the reason, where it cannot run (see `TestHost`).
    public static var needsRoot: Self { .enabled(if: TestHost.runsRootTests, TestHost.rootReason) }
}
