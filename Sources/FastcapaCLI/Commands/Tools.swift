import ArgumentParser

/// The tools beside the capture: `fastcapa broker|consume|watermarks|limit ...`.
struct Tools: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastcapa",
        subcommands: [BrokerCommand.self, ConsumeCommand.self, WatermarksCommand.self, LimitCommand.self]
    )
}
