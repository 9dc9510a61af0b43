import CFastcapaVersion
import FastcapaCapture
import FastcapaKafka

/// fastcapa's version: this is the one place it is written. `--version`, the
/// start-up log line and the man page read it; CHANGELOG.md names the releases.
/// Scripts/package reads it from the built binary; a package of another version
/// (FASTCAPA_VERSION=1.2.0 Scripts/package) replaces it through CFastcapaVersion.
package enum FastcapaVersion {
    package static let number = fastcapa_version_override().map { String(cString: $0) } ?? "1.1.0-dev"

    /// `fastcapa 1.1.0-dev (DPDK 22.11.4, librdkafka 2.0.2)`
    package static var description: String {
        "fastcapa \(number) (\(Eal.version), librdkafka \(LibrdkafkaBuild.version))"
    }

    /// `fastcapa_build_info`'s labels: version, dpdk, librdkafka.
    package static var labels: [(String, String)] {
        let dpdk = Eal.version.hasPrefix("DPDK ") ? String(Eal.version.dropFirst(5)) : Eal.version
        return [("version", number), ("dpdk", dpdk), ("librdkafka", LibrdkafkaBuild.version)]
    }
}
