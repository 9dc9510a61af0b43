import Testing

/// Captures run as child processes, one at a time: this machine has two cores
/// and every probe polls.
@Suite(.serialized) struct EndToEnd {}
