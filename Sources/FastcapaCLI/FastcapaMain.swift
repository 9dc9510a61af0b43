import ArgumentParser
import FastcapaKafka
import Foundation
import Logging

/// `fastcapa [EAL options] -- [options]` captures (DPDK's convention, and
/// Fastcapa's); `fastcapa check ...` takes the same arguments and checks them;
/// `fastcapa broker|consume|...`, `help`, `--version` and the completion and
/// manual generators go to ArgumentParser's root command.
package enum FastcapaMain {
    package static func main() {
        exit(run(Array(CommandLine.arguments.dropFirst())))
    }

    /// Where a command line goes.
    enum Route: Equatable {
        case capture([String])
        case check([String])
        /// ArgumentParser's root command, with the whole command line.
        case root
    }

    /// Options of the root command itself (ArgumentParser's), recognised first on the command line.
    static let rootOptions = [
        "--version", "--generate-completion-script", "--experimental-dump-help", "---completion", "help",
    ]

    static func route(_ arguments: [String]) -> Route {
        guard let first = arguments.first else { return .capture([]) }
        switch first {
        case CaptureCommand._commandName: return .capture(Array(arguments.dropFirst()))
        case CheckCommand._commandName: return .check(Array(arguments.dropFirst()))
        case _ where RootCommand.toolNames.contains(first): return .root
        case _ where rootOptions.contains(where: { first == $0 || first.hasPrefix($0 + "=") }): return .root
        default: return .capture(arguments)
        }
    }

    static func run(_ arguments: [String]) -> Int32 {
        switch route(arguments) {
        case .capture(let arguments): return capture(arguments)
        case .check(let arguments): return check(arguments)
        case .root:
            if let script = Completions.script(for: arguments) {
                print(script, terminator: "")
                return ExitStatus.success
            }
            if arguments == ["--experimental-dump-help"] {
                ManualRootCommand.main(arguments)  // for the man page: the capture's form in the synopsis
            } else {
                RootCommand.main(arguments)  // exits by itself on errors
            }
            return ExitStatus.success
        }
    }

    static func capture(_ arguments: [String]) -> Int32 {
        let (eal, application) = splitArguments(arguments)
        if application.contains("-h") || application.contains("--help") {
            print(CaptureCommand.helpMessage())
            return ExitStatus.success
        }
        if application.contains("--version") {
            print(FastcapaVersion.description)
            return ExitStatus.success
        }
        let parsed = resolve(eal: eal, application: application) { try CaptureOptions.parse($0) }
        guard case .success(let (options, configuration)) = parsed else {
            if case .failure(let failure) = parsed { return failure.status }
            return ExitStatus.usage
        }
        if options.printConfig {
            warn(configuration.warnings)
            print(configuration.yaml(), terminator: "")
            return ExitStatus.success
        }
        // A reader that went away (a pipe given to -s, stderr piped into a log shipper that
        // exited) is a failed write, counted where it happens, never a signal that kills the probe.
        signal(SIGPIPE, SIG_IGN)
        LogOutput.bootstrap(
            level: Logger.Level(rawValue: configuration.logLevel) ?? .info,
            format: configuration.logFormat
        )
        let logger = Logger(label: "fastcapa")
        for warning in configuration.warnings { logger.warning("\(warning)") }
        let reload: @Sendable () throws -> ResolvedConfiguration = {
            let next = try CaptureOptions.parse(application).resolve(eal: eal)
            for warning in next.warnings { logger.warning("SIGHUP: \(warning)") }
            return next
        }
        return CaptureRun(
            configuration: configuration,
            testing: options.testingHooks,
            reloadConfiguration: reload,
            logger: logger
        ).run()
    }

    static func check(_ arguments: [String]) -> Int32 {
        let (eal, application) = splitArguments(arguments)
        if application.contains("-h") || application.contains("--help") {
            print(CheckCommand.helpMessage())
            return ExitStatus.success
        }
        var timeout = 10
        let parsed = resolve(eal: eal, application: application) { application in
            let arguments = try CheckArguments.parse(application)
            timeout = try arguments.timeoutSeconds()
            return arguments.options
        }
        guard case .success(let (_, configuration)) = parsed else {
            if case .failure(let failure) = parsed { return failure.status }
            return ExitStatus.usage
        }
        LogOutput.bootstrap(
            level: Logger.Level(rawValue: configuration.logLevel) ?? .info,
            format: configuration.logFormat
        )
        return CheckRun(configuration: configuration, timeoutSeconds: timeout).run()
    }

    /// A command line or configuration refused, with the exit status to give.
    struct Refused: Error {
        var status: Int32
    }

    /// Parses the options after `--` and resolves the configuration; on failure
    /// prints one message and gives the exit status.
    private static func resolve(
        eal: [String],
        application: [String],
        parse: ([String]) throws -> CaptureOptions
    ) -> Result<(CaptureOptions, ResolvedConfiguration), Refused> {
        do {
            let options = try parse(application)
            return .success((options, try options.resolve(eal: eal)))
        } catch {
            var message = error is SettingError ? "\(error)" : CaptureOptions.message(for: error)
            if eal.isEmpty, let first = application.first,
                first.hasPrefix("--vdev") || first == "-l" || first.hasPrefix("--lcores") || first == "--no-huge"
            {
                message += "\nEAL options go before '--': fastcapa \(first) ... -- [options]"
            }
            LogOutput.writeToStandardError("fastcapa: \(message)\nRun 'fastcapa -- --help' for every option.\n")
            return .failure(
                Refused(status: error is SettingError ? ExitStatus.usage : CaptureOptions.exitCode(for: error).rawValue)
            )
        }
    }

    /// Warnings before logging is set up (`--print-config`).
    static func warn(_ warnings: [String]) {
        for warning in warnings { LogOutput.writeToStandardError("fastcapa: warning: \(warning)\n") }
    }

    /// EAL arguments come before `--`, the application's after it. Without
    /// `--`, everything is the application's.
    static func splitArguments(_ arguments: [String]) -> (eal: [String], application: [String]) {
        guard let separator = arguments.firstIndex(of: "--") else { return ([], arguments) }
        return (Array(arguments[..<separator]), Array(arguments[(separator + 1)...]))
    }
}
