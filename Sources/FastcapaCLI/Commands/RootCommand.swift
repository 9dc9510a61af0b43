import ArgumentParser

/// `fastcapa`: capture by default, tools beside it. `FastcapaMain` hands the
/// capture and `check` their `EAL -- options` split itself (ArgumentParser has
/// no such form) and everything else here: `--version`, the tools, `help`, and
/// what the shell completions and the man page are generated from.
struct RootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastcapa",
        abstract: "Capture packets with DPDK and publish each one as a Kafka message.",
        discussion: """
            fastcapa polls packets from network cards with DPDK and publishes each one as a Kafka message, keyed by \
            its capture time (8 bytes, epoch microseconds, big-endian). Every packet received is delivered or \
            counted as dropped with its reason.

            The capture is the default command: fastcapa [EAL options] -- [options], as in Metron's Fastcapa \
            (fastcapa -- --help lists the options), or fastcapa --config FILE with everything in a YAML file. \
            fastcapa check takes the same arguments and checks them without capturing.

            Values in the config file and the Kafka INI file may name environment variables as ${NAME} or \
            ${NAME:-DEFAULT}; a secret property (sasl.password, ssl.key.password, ...) written @/path is read from \
            that file, @NAME from systemd's $CREDENTIALS_DIRECTORY. Under systemd ($JOURNAL_STREAM), log lines \
            carry their priority for the journal.

            Exit status: 0 clean stop, 1 could not start, 2 accounting did not balance, 3 forced stop, 64 bad \
            command line or configuration.
            """,
        version: FastcapaVersion.description,
        subcommands: [
            CaptureCommand.self, CheckCommand.self, BrokerCommand.self, ConsumeCommand.self, WatermarksCommand.self,
            LimitCommand.self,
        ],
        defaultSubcommand: CaptureCommand.self
    )

    /// The tools ArgumentParser runs whole.
    static var toolNames: Set<String> {
        Set(configuration.subcommands.map { $0._commandName }).subtracting([
            CaptureCommand._commandName, CheckCommand._commandName,
        ])
    }
}
