import ArgumentParser

/// Help text for the capture command.
struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastcapa",
        abstract: "Capture packets with DPDK and publish each one as a Kafka message.",
        usage: "fastcapa [EAL options] -- [options]\n  fastcapa broker [options]\n  fastcapa consume [options]",
        discussion: """
            Each message's key is the packet's capture time: 8 bytes, epoch microseconds, big-endian.
            With no broker configured (-c or -X bootstrap.servers), an embedded broker is started.
            Exit status: 0 clean stop, 1 could not start, 2 accounting did not balance, 3 forced stop, 64 bad usage.
            """
    )
    @OptionGroup var options: CaptureOptions
}
