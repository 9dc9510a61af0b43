import Foundation

/// A tool these tests call (systemd-analyze, bash, Scripts/package), run to the end.
enum ChildProcess {
    /// Runs `executable` with `arguments` in `directory`, with `environment` added to
    /// this process's; its exit status and its standard output and error, interleaved.
    static func run(
        _ executable: URL,
        _ arguments: [String],
        in directory: URL,
        environment: [String: String] = [:]
    ) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}
