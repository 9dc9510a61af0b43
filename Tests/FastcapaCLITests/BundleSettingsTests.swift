import FastcapaCapture
import Testing

@testable import FastcapaCLI

/// `--bundle-packets`, `--bundle-bytes`, `--bundle-linger-us`: defaults, the
/// refusals that name both numbers and the fix, and what `check` says.
@Suite struct BundleSettingsTests {
    @Test func bundlesAreOffByDefault() throws {
        let settings = try CaptureOptions.parse([]).resolve().settings
        #expect(settings.bundlePackets == 1 && !settings.bundles)
        #expect(settings.bundleBytes == 524_288 && settings.bundleLingerMicros == 1000)
        #expect(settings.bundleSummary == "off (one packet per message)")
    }

    @Test func limitsAreReadAndStated() throws {
        let resolved = try CaptureOptions.parse([
            "--bundle-packets", "256", "--bundle-bytes", "65536", "--bundle-linger-us", "500", "--snap-length", "9000",
        ]).resolve()
        let settings = resolved.settings
        #expect(settings.bundles && settings.bundlePackets == 256)
        #expect(
            settings.bundleSummary.hasPrefix("up to 256 packets, 65536 bytes, 500 us linger; 512 buffers (32 MiB")
        )
        let yaml = resolved.yaml()
        #expect(yaml.contains("bundle-packets: 256") && yaml.contains("bundle-bytes: 65536"))
        #expect(yaml.contains("bundle-linger-us: 500"))
    }

    /// A value the error must name, and the fix it must give.
    @Test(arguments: [
        (
            ["--bundle-packets", "8", "--bundle-bytes", "1000", "--snap-length", "1500"],
            ["1000", "1500", "--bundle-bytes 1516"]
        ),
        (["--bundle-packets", "8", "--bundle-bytes", "999489"], ["999489", "1000000", "999488", "message.max.bytes"]),
        (
            ["--bundle-packets", "8", "--snap-length", "1500", "-X", "message.max.bytes=100000"],
            ["524288", "100000", "99488"]
        ),
        (
            ["--bundle-packets", "8", "--snap-length", "1500", "--bundle-bytes", "2000", "--headers", "port,time_ns"],
            ["time_ns", "microseconds", "--bundle-packets 1"]
        ),
        (["--bundle-packets", "65536"], ["65536", "65535"]),
        (["--bundle-packets", "0"], ["bundle-packets", "Use 1"]),
        (["--bundle-packets", "4", "--bundle-linger-us", "0"], ["bundle-linger-us", "1000000"]),
        (["--bundle-packets", "4", "--bundle-linger-us", "1000001"], ["1000001", "--slack"]),
    ])
    func refusalsNameTheNumbersAndTheFix(_ arguments: [String], _ expected: [String]) {
        #expect {
            try CaptureOptions.parse(arguments).resolve()
        } throws: { error in
            let message = "\(error)"
            let missing = expected.filter { !message.contains($0) }
            if !missing.isEmpty { Issue.record("'\(message)' lacks \(missing)") }
            return missing.isEmpty
        }
    }

    @Test func limitsAtTheirBoundsAreAccepted() throws {
        // The defaults go together: a bundle holds a record of the longest snap length.
        _ = try CaptureOptions.parse(["--bundle-packets", "256"]).resolve()
        // The smallest value for the snap length, and the largest message.max.bytes leaves.
        _ = try CaptureOptions.parse(["--bundle-packets", "2", "--snap-length", "1500", "--bundle-bytes", "1516"])
            .resolve()
        _ = try CaptureOptions.parse(["--bundle-packets", "65535", "--bundle-bytes", "999488"]).resolve()
        // With bundles off, the byte limit is not checked against the snap length.
        _ = try CaptureOptions.parse(["--bundle-bytes", "16", "--headers", "time_ns"]).resolve()
    }
}
