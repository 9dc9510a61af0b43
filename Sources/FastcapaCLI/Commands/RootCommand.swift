import ArgumentParser

/// `fastcapa`: capture by default, tools beside it. `FastcapaMain` hands the
/// capture and `check` their `EAL -- options` split itself (ArgumentParser has
/// no such form) and everything else here: `--version`, the tools, `help`, and
/// what the shell completions and the man page are generated from.
struct RootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastcapa",
        abstract: "Capture packets with DPDK and publish each one as a Kafka message.",
        usage: CaptureCommand.forms,
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

            Exit status of the capture (check's is under check below; the other commands exit 0 when done and \
            non-zero with a message when not, consume cut short by a signal with 128 plus its number):

            0: stopped cleanly; every packet was delivered or counted as dropped.

            1: could not start (EAL, a port, memory, lcores, a Kafka producer, the metrics address in use); the \
            message says why and what to do.

            2: the accounting did not balance (a bug: please report it with the accounting lines).

            3: a second SIGINT or SIGTERM cut the drain short.

            64: bad command line or configuration; nothing was started.
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

/// The root command as the man page shows it. generate-manual (which reads `fastcapa
/// --experimental-dump-help`) builds the synopsis from the root's arguments and reads neither `usage` nor
/// the discussion there, so this one adds the capture's form as arguments. It only answers the dump: as
/// the root that parses, these arguments would take the subcommands' names, and the completions too.
struct ManualRootCommand: ParsableCommand {
    static let configuration = RootCommand.configuration

    @Argument(help: ArgumentHelp("DPDK's EAL options (-l, -a, --vdev, ...), the capture's.", valueName: "EAL options"))
    var ealOptions: String?

    @Argument(
        help: ArgumentHelp(
            "Ends the EAL options. Without it every argument is fastcapa's, and the EAL options come from the config file's eal: list.",
            valueName: "--"
        )
    )
    var separator: String

    @Argument(help: ArgumentHelp("fastcapa's options: those of capture, below.", valueName: "options"))
    var options: [String] = []
}
