import FastcapaTestSupport
import Foundation
import Testing

/// Configs/fastcapa.service is hardened (systemd's own rating), explains every
/// restriction, and keeps what a real NIC needs: VFIO devices, the hugepage
/// mounts under /dev and DPDK's runtime folder.
@Suite struct ServiceUnitTests {
    static let unit = TestFiles.packageRoot.appendingPathComponent("Configs/fastcapa.service")
    static let analyzer = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// The `[Service]` section's lines, each with the line before it.
    static func serviceLines() throws -> [(line: String, previous: String)] {
        let lines = try String(contentsOf: unit, encoding: .utf8).split(
            separator: "\n",
            omittingEmptySubsequences: false
        )
        .map(String.init)
        guard let start = lines.firstIndex(of: "[Service]") else { return [] }
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("[") } ?? lines.endIndex
        return (start + 1..<end).map { (lines[$0], lines[$0 - 1]) }
    }

    static func key(_ line: String) -> String? {
        guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { return nil }
        return String(line[..<equals])
    }

    @Test(
        .enabled(if: analyzer != nil, "systemd-analyze is not installed (Debian: the systemd package)")
    )
    func systemdRatesTheUnitAtMost4() throws {
        // --offline reads the unit from a path; a folder of its own keeps drop-ins of this host out.
        let directory = TestFiles.temporaryDirectory()
        let copy = directory.appendingPathComponent("fastcapa.service")
        try FileManager.default.copyItem(at: Self.unit, to: copy)
        let text = try ChildProcess.run(
            URL(fileURLWithPath: Self.analyzer!),
            ["security", "--offline=true", "--no-pager", "fastcapa.service"],
            in: directory
        ).output
        let match = try #require(
            text.firstMatch(of: /Overall exposure level for fastcapa\.service: ([0-9.]+)/),
            "systemd-analyze printed no rating: \(text)"
        )
        let exposure = try #require(Double(match.1))
        #expect(exposure <= 4.0, "exposure \(exposure): \(text)")
    }

    /// Every directive has a comment right above it, or continues the one above
    /// (a second DeviceAllow=, RuntimeDirectoryMode= after RuntimeDirectory=).
    @Test func everyDirectiveIsExplained() throws {
        let lines = try Self.serviceLines()
        #expect(!lines.isEmpty)
        for (line, previous) in lines {
            guard let key = Self.key(line) else { continue }
            let explained =
                previous.hasPrefix("#") || Self.key(previous).map { key == $0 || key.hasPrefix($0) } == true
            #expect(explained, "'\(line)' has no comment above it")
        }
    }

    /// What a capture on a real NIC needs stays reachable.
    @Test func realNICsStillWork() throws {
        let directives = try Self.serviceLines().compactMap { line, _ -> (String, String)? in
            guard let key = Self.key(line) else { return nil }
            return (key, String(line.dropFirst(key.count + 1)))
        }
        func values(_ key: String) -> [String] { directives.filter { $0.0 == key }.map(\.1) }
        #expect(!values("PrivateDevices").contains { ["yes", "true", "1", "on"].contains($0) }, "hides /dev/vfio")
        #expect(values("DeviceAllow").contains("/dev/vfio/vfio rw") && values("DeviceAllow").contains("char-vfio rw"))
        #expect(values("RuntimeDirectory") == ["dpdk/fastcapa"], "DPDK's runtime folder for --file-prefix=fastcapa")
        #expect(values("LimitMEMLOCK") == ["infinity"], "VFIO pins DMA memory")
        // The service runs the installed config and nothing else, so `fastcapa check --config` on that
        // file sees the service's settings; the file itself refuses the embedded broker.
        #expect(
            values("ExecStart") == ["/usr/bin/fastcapa --config /etc/fastcapa/fastcapa.yaml"],
            "\(values("ExecStart"))"
        )
        #expect(values("ProtectSystem") == ["strict"])
        #expect(!values("ProcSubset").contains("pid"), "EAL reads /proc/meminfo and /proc/mounts")
        #expect(values("SystemCallFilter").first == "@system-service", "keeps mbind and sched_setaffinity")
        // The stop's bound at the default --drain-timeout (10 s + 5 s, Operations.md) and the margin
        // fastcapa's EXTEND_TIMEOUT_USEC adds (5 s) fit in the stop timeout.
        let stopTimeout = try #require(values("TimeoutStopSec").first.flatMap { Int($0) })
        #expect(stopTimeout >= 10 + 5 + 5, "TimeoutStopSec=\(stopTimeout)")
        #expect(values("NotifyAccess") == ["main"] && values("Type") == ["notify"], "STATUS= and EXTEND_TIMEOUT_USEC=")
        // The fixed prefix the runtime folder is named after is the one nic.yaml gives EAL.
        let nic = try String(
            contentsOf: TestFiles.packageRoot.appendingPathComponent("Configs/nic.yaml"),
            encoding: .utf8
        )
        #expect(nic.contains("--file-prefix=fastcapa\""))
        #expect(nic.contains("\nrequire-broker: true "), "the installed config refuses the embedded broker")
        // The NICs are bound and the hugepages reserved (Debian's dpdk.service) before the probe starts.
        let unitSection = try String(contentsOf: Self.unit, encoding: .utf8).split(separator: "\n")
            .prefix { $0 != "[Service]" }
        for key in ["Wants=", "After="] {
            let units = unitSection.filter { $0.hasPrefix(key) }.flatMap {
                $0.dropFirst(key.count).split(separator: " ")
            }
            #expect(units.contains("dpdk.service"), "\(key) \(units)")
        }
    }

    /// The capture filter runs JIT-compiled under the shipped unit: MemoryDenyWriteExecute=yes would
    /// turn it into librte_bpf's interpreter (SilentFailureTests shows the fallback and its warning).
    /// The unit says why the line is left out, the measured trade-off, and how to add it back.
    @Test func theCaptureFilterIsJitCompiledUnderTheShippedUnit() throws {
        let lines = try Self.serviceLines()
        let settings = lines.filter { Self.key($0.line) == "MemoryDenyWriteExecute" }.map(\.line)
        #expect(
            !settings.contains { ["yes", "true", "1", "on"].contains($0.split(separator: "=").last ?? "") },
            "\(settings)"
        )
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
        #expect(text.contains("# Not MemoryDenyWriteExecute=yes: the capture filter's JIT"))
        #expect(text.contains("\"The sandbox and the capture filter\""))
        let deployment = try String(
            contentsOf: TestFiles.packageRoot.appendingPathComponent("Documentation/Deployment.md"),
            encoding: .utf8
        )
        #expect(deployment.contains("## The sandbox and the capture filter"))
    }
}
