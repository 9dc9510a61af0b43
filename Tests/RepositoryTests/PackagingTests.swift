import FastcapaTestSupport
import Foundation
import Testing

/// The Debian package's pieces agree with each other and with the unit: what
/// Scripts/package installs is where the unit and the install message look,
/// and the maintainer scripts never start what the operator has not configured.
/// Scripts/package-test installs the package itself (in Scripts/test).
@Suite struct PackagingTests {
    static let root = TestFiles.packageRoot

    static func text(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// Runs `command` (a path from the package root, or absolute) from the package root.
    static func run(
        _ command: String,
        _ arguments: [String],
        environment: [String: String] = [:]
    ) throws -> (
        status: Int32, output: String
    ) {
        let executable = command.hasPrefix("/") ? URL(fileURLWithPath: command) : root.appendingPathComponent(command)
        return try ChildProcess.run(executable, arguments, in: root, environment: environment)
    }

    @Test(arguments: ["postinst", "prerm", "postrm"])
    func maintainerScriptIsExecutableBash(name: String) throws {
        let path = "Packaging/\(name)"
        #expect(FileManager.default.isExecutableFile(atPath: Self.root.appendingPathComponent(path).path))
        let script = try Self.text(path)
        #expect(script.hasPrefix("#!/bin/bash\n"), "bash is essential on Debian; sh would lose pipefail")
        #expect(script.contains("\nset -euo pipefail\n"))
        let syntax = try Self.run("/bin/bash", ["-n", path])
        #expect(syntax.status == 0, "\(path): \(syntax.output)")
        // A probe must be configured first: nothing here enables or starts the service.
        let starts = script.split(separator: "\n").filter {
            $0.trimmingCharacters(in: .whitespaces).firstMatch(of: /^systemctl\s+(enable|start|restart|reenable)\b/)
                != nil
        }
        #expect(starts.isEmpty, "\(path) starts or enables the service: \(starts)")
    }

    /// The unit runs the binary and the config where the package puts them, the
    /// config is a conffile, and the install message checks that same file.
    @Test func packageInstallsWhatTheUnitRuns() throws {
        let unit = try Self.text("Configs/fastcapa.service")
        let execStart = try #require(unit.firstMatch(of: /\nExecStart=(\S+) --config (\S+)\n/))
        let package = try Self.text("Scripts/package")
        #expect(package.contains("\"$stage\(execStart.1)\""), "Scripts/package does not install \(execStart.1)")
        #expect(
            package.contains("Configs/nic.yaml \"$stage\(execStart.2)\""),
            "nic.yaml is not installed as \(execStart.2)"
        )
        #expect(package.contains("echo \(execStart.2) >\"$stage/DEBIAN/conffiles\""), "\(execStart.2) is no conffile")
        #expect(package.contains("\"$stage/lib/systemd/system/fastcapa.service\""))
        let postinst = try Self.text("Packaging/postinst")
        #expect(postinst.contains("fastcapa check --config \(execStart.2)"))
        #expect(postinst.contains("systemctl enable --now fastcapa"))
        let folder = (String(execStart.2) as NSString).deletingLastPathComponent
        #expect(try Self.text("Packaging/postrm").contains("rm -rf \(folder) "), "purge does not remove \(folder)")
    }

    /// A version Scripts/package cannot map onto Debian's is refused before anything is built.
    @Test(arguments: ["1.2", "1.2.0-rc_1", "v1.2.0", "1.2.0+build.5"])
    func packageRefusesABadVersion(version: String) throws {
        let result = try Self.run("Scripts/package", [], environment: ["FASTCAPA_VERSION": version])
        #expect(result.status == 64, "\(result.output)")
        #expect(result.output.contains("FASTCAPA_VERSION='\(version)'") && result.output.contains("like 1.2.0"))
    }
}
