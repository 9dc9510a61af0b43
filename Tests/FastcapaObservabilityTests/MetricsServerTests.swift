import FastcapaCapture
import FastcapaTestSupport
import Foundation
import Synchronization
import Testing

@testable import FastcapaObservability

/// The metrics and health server, in process.
@Suite struct MetricsServerTests {
    /// `stop()` returns only once the response being rendered is done: the pipeline is released after the
    /// stop, and a render still running then would read it freed (a crash after the accounting). Responses
    /// render on the event loop, so the stop can wait for the one under way.
    @Test func stopWaitsForTheResponseBeingRendered() throws {
        let started = DispatchSemaphore(value: 0)
        let finished = Mutex(false)
        let server = try MetricsServer(
            host: "127.0.0.1",
            port: 0,
            metrics: {
                started.signal()
                usleep(300_000)  // a slow render
                finished.withLock { $0 = true }
                return "fastcapa_test 1\n"
            },
            health: { HealthSummary() }
        )
        let port = UInt16(server.address.split(separator: ":").last!)!
        let client = Thread { _ = HTTPGet.status(host: "127.0.0.1", port: port, path: "/metrics") }
        client.start()
        started.wait()
        server.stop()
        #expect(finished.withLock { $0 }, "stop() returned while a response was still being rendered")
    }

    @Test func answersMetricsHealthAndRefusesTheRest() throws {
        let server = try MetricsServer(
            host: "127.0.0.1",
            port: 0,
            metrics: { "fastcapa_test 1\n" },
            health: { HealthSummary(state: .unhealthy("test")) }
        )
        defer { server.stop() }
        let port = UInt16(server.address.split(separator: ":").last!)!
        #expect(HTTPGet.status(host: "127.0.0.1", port: port, path: "/metrics") == 200)
        #expect(HTTPGet.status(host: "127.0.0.1", port: port, path: "/health") == 503)
        #expect(HTTPGet.status(host: "127.0.0.1", port: port, path: "/other") == 404)
    }
}

/// A port whose link is down shows in the statistics table and the -s file, so a silent port is told from an idle one.
@Suite struct LinkStatisticsTests {
    static let links = [
        Port.Link(port: 0, up: true, speedMbps: 10_000, idleSeconds: 0.1234),
        Port.Link(port: 1, up: false, idleSeconds: 12),
    ]

    @Test func theTableHasALineForALinkThatIsDown() {
        var table = StatisticsTable()
        let text = table.render(CaptureSnapshot(perQueue: [], perWorker: [], links: Self.links), at: 0)
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("  [link]") }
        #expect(lines == ["  [link] port 1 down, no packet for 12 s"], "\(text)")
        let up = table.render(CaptureSnapshot(perQueue: [], perWorker: [], links: [Self.links[0]]), at: 1)
        #expect(!up.contains("[link]"))
    }

    @Test func theStatisticsFileCarriesEachPortsLink() throws {
        let json = StatisticsService.linksJSON(Self.links)
        #expect(
            json
                == "[{\"port\":0,\"link_up\":true,\"speed_mbps\":10000,\"idle_seconds\":0.123},"
                + "{\"port\":1,\"link_up\":false,\"speed_mbps\":null,\"idle_seconds\":12.0}]"
        )
        #expect(try JSONSerialization.jsonObject(with: Data(json.utf8)) is [[String: Any]])
    }
}
