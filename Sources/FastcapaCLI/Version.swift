import FastcapaCapture
import FastcapaKafka

/// fastcapa's version: this is the one place it is written. `--version`, the
/// start-up log line and the man page read it; CHANGELOG.md names the releases.
package enum FastcapaVersion {
    package static let number = "1.1.0-dev"

    /// `fastcapa 1.1.0-dev (DPDK 22.11.4, librdkafka 2.0.2)`
    package static var description: String {
        "fastcapa \(number) (\(Eal.version), librdkafka \(LibrdkafkaBuild.version))"
    }
}
