import FastcapaTestSupport
import Testing

/// Captures run as child processes, one at a time: this machine has two cores
/// and every probe polls. They need root (DPDK's runtime files, veth pairs), so
/// `swift test` as an ordinary user skips them and says so.
@Suite(.serialized, .tags(.endToEnd), .needsRoot) struct EndToEnd {}
