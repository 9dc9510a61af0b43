import ArgumentParser
import FastcapaKafka
import Foundation
import Logging

/// `fastcapa [EAL options] -- [options]` captures (DPDK's convention, and
/// Fastcapa's); `fastcapa broker ...` and `fastcapa consume ...` are tools.
package enum FastcapaMain {
    package static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, ["broker", "consume", "watermarks", "limit"].contains(first) {
            Tools.main(arguments)
            exit(ExitStatus.success)
        }
        exit(capture(arguments))
    }

    static func capture(_ arguments: [String]) -> Int32 {
        let (eal, application) = splitArguments(arguments)
        if application.contains("-h") || application.contains("--help") {
            print(CaptureCommand.helpMessage())
            return ExitStatus.success
        }
        let configuration: ResolvedConfiguration
        let options: CaptureOptions
        do {
            options = try CaptureOptions.parse(application)
            configuration = try options.resolve(eal: eal)
        } catch {
            var message = error is SettingError ? "\(error)" : CaptureOptions.message(for: error)
            if eal.isEmpty, let first = application.first,
                first.hasPrefix("--vdev") || first == "-l" || first.hasPrefix("--lcores") || first == "--no-huge"
            {
                message += "\nEAL options go before '--': fastcapa \(first) ... -- [options]"
            }
            FileHandle.standardError.write(
                Data("fastcapa: \(message)\nRun 'fastcapa -- --help' for every option.\n".utf8)
            )
            return error is SettingError ? ExitStatus.usage : CaptureOptions.exitCode(for: error).rawValue
        }
        if options.printConfig {
            print(configuration.yaml(), terminator: "")
            return ExitStatus.success
        }
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "fastcapa")
        let kafkaLogger = Logger(label: "librdkafka")
        KafkaLog.route { level, facility, message, client in
            // librdkafka's syslog levels onto swift-log's.
            let mapped: Logger.Level =
                switch level {
                case ...2: .critical
                case 3: .error
                case 4: .warning
                case 5: .notice
                case 6: .info
                default: .debug
                }
            kafkaLogger.log(level: mapped, "\(message)", metadata: ["facility": "\(facility)", "client": "\(client)"])
        }
        let reload: @Sendable () throws -> ResolvedConfiguration = {
            try CaptureOptions.parse(application).resolve(eal: eal)
        }
        return CaptureRun(
            configuration: configuration,
            testingFaultSignals: options.testingFaultSignals,
            reloadConfiguration: reload,
            logger: logger
        ).run()
    }

    /// EAL arguments come before `--`, the application's after it. Without
    /// `--`, everything is the application's.
    static func splitArguments(_ arguments: [String]) -> (eal: [String], application: [String]) {
        guard let separator = arguments.firstIndex(of: "--") else { return ([], arguments) }
        return (Array(arguments[..<separator]), Array(arguments[(separator + 1)...]))
    }
}
