import ArgumentParser

/// The capture: `fastcapa [EAL options] -- [options]` (`capture` may be named
/// first). Its help and the generated completions and man page come from here;
/// `FastcapaMain.capture` runs it.
struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture packets with DPDK and publish each one as a Kafka message (the default command).",
        usage: forms,
        discussion: """
            EAL options (DPDK's: -l, --lcores, -a, --vdev, --socket-mem, --file-prefix, ...) come before '--', \
            fastcapa's after it, as in Metron's Fastcapa. Without '--', every argument is fastcapa's and the EAL \
            options come from the config file's eal: list.
            Each message's key is the packet's capture time: 8 bytes, epoch microseconds, big-endian.
            With no broker configured (bootstrap.servers in the -c INI file, in the config file's kafka: map or \
            as -X bootstrap.servers=HOST:PORT), an embedded broker is started.
            Exit status: 0 clean stop, 1 could not start, 2 accounting did not balance, 3 forced stop (a second \
            signal), 64 bad command line or configuration.
            """
    )
    /// Every way to run fastcapa, for the capture's help and `fastcapa help`.
    static let forms = """
        fastcapa [EAL options] -- [options]
          fastcapa --config FILE [options]
          fastcapa check [EAL options] -- [options] [--timeout SECONDS]
          fastcapa broker|consume|watermarks|limit [options]
          fastcapa --version
          fastcapa --generate-completion-script bash|zsh|fish
        """

    @OptionGroup var options: CaptureOptions

    @Argument(help: ArgumentHelp("EAL options, before '--'.", valueName: "EAL options"))
    var eal: [String] = []
}
