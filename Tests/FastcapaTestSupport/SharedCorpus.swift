import Foundation
import PcapFormat
import Testing

/// Real Ethernet captures (tcpdump's test suite) in `../shared/pcaps` beside the
/// repository, or in `$FASTCAPA_PCAPS`: an extra corpus. Every test also runs
/// on captures it builds itself; the corpus adds what nobody thought to build.
///
/// Required when `CI` is set (CI has it: a missing folder there is a failure),
/// otherwise used when present and reported as skipped, with the reason, when not.
package enum SharedCorpus {
    package static var folder: URL {
        if let path = ProcessInfo.processInfo.environment["FASTCAPA_PCAPS"] { return URL(fileURLWithPath: path) }
        return TestFiles.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/pcaps")
    }

    package static var isPresent: Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: folder.path, isDirectory: &directory) && directory.boolValue
    }

    package static var isRequired: Bool { ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty } ?? false }

    /// The corpus's `.pcap` files, sorted by name.
    package static func files() throws -> [URL] {
        guard isPresent else {
            throw CorpusMissing(
                description: "CI is set but \(folder.path) does not exist: CI must provide the shared captures"
            )
        }
        return try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".pcap") }.sorted().map { folder.appendingPathComponent($0) }
    }

    /// Every record of every capture, in file order.
    package static func records() throws -> [PcapRecord] {
        try files().flatMap { try PcapFile(bytes: [UInt8](Data(contentsOf: $0))).records }
    }

    package struct CorpusMissing: Error, CustomStringConvertible {
        package var description: String
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs a test of the shared captures when they are there or CI requires them.
    package static var sharedCorpus: Self {
        .enabled(
            if: SharedCorpus.isPresent || SharedCorpus.isRequired,
            "../shared/pcaps is absent (set FASTCAPA_PCAPS to a folder of captures to run this on real ones)"
        )
    }
}
