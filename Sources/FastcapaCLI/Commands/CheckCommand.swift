import ArgumentParser
import Foundation

/// What `fastcapa check` reads after `--`: the capture's options, and how long
/// to wait for the brokers.
struct CheckArguments: ParsableArguments {
    @OptionGroup var options: CaptureOptions

    @Option(
        name: .customLong("timeout"),
        parsing: .unconditional,
        help: "Seconds to wait for the brokers to answer."
    )
    var timeout: String = "10"

    /// The timeout, checked.
    func timeoutSeconds() throws(SettingError) -> Int {
        guard let seconds = Int(timeout.trimmingCharacters(in: .whitespaces)), (1...600).contains(seconds) else {
            throw SettingError("timeout: '\(timeout)' is out of range. Give 1 to 600 seconds, e.g. --timeout 10.")
        }
        return seconds
    }
}

/// `fastcapa check [EAL options] -- [options]`: validates what a capture with the
/// same arguments would use, without capturing, like `suricata -T`.
/// `FastcapaMain.check` runs it (`CheckRun`).
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a capture's configuration, EAL arguments, ports and brokers without capturing.",
        usage: "fastcapa check [EAL options] -- [options] [--timeout SECONDS]",
        discussion: """
            Takes the capture's arguments. Reads the configuration (files, ${NAME} references, secrets), checks the \
            Kafka properties against this librdkafka, starts EAL in memory (no runtime files, no telemetry socket, \
            so a running probe is not disturbed), configures each selected port as the capture would and closes it \
            again (queues, RSS, offloads, MTU, descriptors), checks the lcores and control cores, and asks the \
            brokers for the topic's metadata. Prints one line per check. Exit status: 0 ready, 1 a check failed, \
            64 bad command line or configuration.
            """
    )
    @OptionGroup var arguments: CheckArguments

    @Argument(help: ArgumentHelp("EAL options, before '--'.", valueName: "EAL options"))
    var eal: [String] = []
}
