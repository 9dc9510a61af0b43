import FastcapaTestSupport
import Foundation
import Glibc
import Testing

extension EndToEnd {
    /// Running under systemd: readiness and stopping are notified on $NOTIFY_SOCKET.
    @Suite struct Daemon {
        @Test func notifiesSystemdWhenCapturingAndWhenStopping() throws {
            let path = TestFiles.temporaryDirectory().appendingPathComponent("notify").path
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            try #require(fd >= 0)
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            try #require(bound == 0)

            let sample = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
            let result = try Harness.run(
                "/usr/bin/env",
                ["NOTIFY_SOCKET=\(path)", Harness.binary]
                    + Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(sample)"]) + [
                        "--", "--idle-exit", "1", "--stats-interval", "0",
                    ]
            )
            #expect(result.status == 0, "\(result.stderr)")

            var messages: [String] = []
            var buffer = [UInt8](repeating: 0, count: 512)
            while true {
                let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if count <= 0 { break }
                messages.append(String(decoding: buffer[0..<count], as: UTF8.self))
            }
            #expect(messages.count == 2, "\(messages)")
            #expect(messages.first?.hasPrefix("READY=1") == true)
            #expect(messages.last?.hasPrefix("STOPPING=1") == true)
        }
    }
}
