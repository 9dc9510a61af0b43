import FastcapaTestSupport
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

extension EndToEnd {
    /// /metrics and /health, scraped while the probe runs.
    @Suite struct Metrics {
        static func get(_ url: String) async throws -> (status: Int, body: String) {
            let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
        }

        /// `name{labels} value` → value, for the samples of one metric.
        static func value(_ text: String, _ name: String, _ labels: String = "") -> Double? {
            let prefix = labels.isEmpty ? "\(name) " : "\(name){\(labels)} "
            return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap {
                Double($0.dropFirst(prefix.count))
            }
        }

        static func address(_ child: Harness.Child) async throws -> String {
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                if let range = child.stderr.range(of: #"http://[0-9.]+:[0-9]+"#, options: .regularExpression) {
                    return String(child.stderr[range])
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw HarnessError("the probe did not say where it serves metrics: \(child.stderr)")
        }

        /// With a capture filter (`tcp`: 45 of sample.pcap's 236 frames), so that
        /// `fastcapa_filtered_packets_total` is checked on a number that is not 0.
        @Test func scrapedCountersMatchTheFinalAccounting() async throws {
            let broker = try Harness.Broker()
            let sample = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
            let probe = try Harness.Child(
                Harness.binary,
                Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(sample)"]) + [
                    "--", "--stats-interval", "0", "--idle-exit", "4", "--metrics-address", "127.0.0.1:0",
                    "-f", "tcp", "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            let base = try await Self.address(probe)
            var metrics = ""
            let deadline = Date().addingTimeInterval(20)
            repeat {
                try await Task.sleep(for: .milliseconds(200))
                metrics = try await Self.get("\(base)/metrics").body
            } while Self.value(metrics, "fastcapa_delivered_packets_total", "worker=\"0\"") != 45 && Date() < deadline
            let health = try await Self.get("\(base)/health")
            #expect(health.status == 200 && health.body.hasPrefix("healthy"))
            #expect(try await Self.get("\(base)/nothing").status == 404)

            let result = probe.wait(timeout: 60)
            #expect(result.status == 0, "\(result.stderr)")
            let accounting = result.accounting
            let expected: [(String, String, String)] = [
                ("fastcapa_received_packets_total", "queue=\"0/0\"", "received"),
                ("fastcapa_enqueued_packets_total", "queue=\"0/0\"", "enqueued"),
                ("fastcapa_produced_packets_total", "worker=\"0\"", "produced"),
                ("fastcapa_delivered_packets_total", "worker=\"0\"", "delivered"),
                ("fastcapa_delivered_bytes_total", "worker=\"0\"", "delivered_bytes"),
                ("fastcapa_nic_received_packets_total", "port=\"0\"", "nic_received"),
                ("fastcapa_dropped_packets_total", "queue=\"0/0\",reason=\"ring_full\"", "drop_ring_full"),
                ("fastcapa_dropped_packets_total", "worker=\"0\",reason=\"delivery_failed\"", "drop_delivery_failed"),
                ("fastcapa_dropped_packets_total", "worker=\"0\",reason=\"queue_full\"", "drop_queue_full"),
                ("fastcapa_filtered_packets_total", "queue=\"0/0\"", "filtered"),
                ("fastcapa_truncated_packets_total", "worker=\"0\"", "truncated"),
            ]
            for (name, labels, key) in expected {
                #expect(Self.value(metrics, name, labels).map { Int($0) } == accounting[key], "\(name) vs \(key)")
            }
            // One family for every drop: its series add up to the accounting's `dropped`.
            let drops = metrics.split(separator: "\n").filter { $0.hasPrefix("fastcapa_dropped_packets_total{") }
            #expect(drops.count == 8, "ring_full and the 7 reasons of a transmit worker: \(drops)")
            #expect(
                drops.compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.reduce(0, +)
                    == accounting["dropped"]
            )
            for state in ["healthy", "degraded", "restarting", "unhealthy"] {
                let expected: Double = state == "healthy" ? 1 : 0
                #expect(Self.value(metrics, "fastcapa_producer_state", "worker=\"0\",state=\"\(state)\"") == expected)
            }
            // A configured broker; net_pcap says its link is up, and the port has been quiet at most a few seconds.
            #expect(Self.value(metrics, "fastcapa_embedded_broker") == 0)
            #expect(Self.value(metrics, "fastcapa_nic_link_up", "port=\"0\"") == 1)
            #expect((Self.value(metrics, "fastcapa_nic_idle_seconds", "port=\"0\"") ?? -1) >= 0)
            #expect(Self.value(metrics, "fastcapa_ring_depth", "queue=\"0/0\"") == 0)
            #expect(Self.value(metrics, "fastcapa_ring_capacity", "queue=\"0/0\"") == 2047)
            let buildInfo = metrics.split(separator: "\n").first { $0.hasPrefix("fastcapa_build_info{") } ?? ""
            #expect(
                buildInfo.hasPrefix("fastcapa_build_info{version=\"1.")
                    && buildInfo.split(separator: " ").last.flatMap { Double($0) } == 1,
                "\(buildInfo)"
            )
            #expect(buildInfo.contains("dpdk=\"22.11") && buildInfo.contains("librdkafka=\"2."), "\(buildInfo)")
            for name in [
                "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                "process_start_time_seconds", "process_max_fds", "process_virtual_memory_bytes",
            ] {
                #expect((Self.value(metrics, name) ?? 0) > 0, "\(name)")
            }
            // The start time is this run's, within a minute.
            #expect(abs((Self.value(metrics, "process_start_time_seconds") ?? 0) - Date().timeIntervalSince1970) < 60)
            // Prometheus' own linter finds nothing to say about names, types, help or units.
            let scraped = TestFiles.temporaryDirectory().appendingPathComponent("metrics.txt").path
            try metrics.write(toFile: scraped, atomically: true, encoding: .utf8)
            let lint = try Harness.run("/bin/sh", ["-c", "promtool check metrics < '\(scraped)'"], timeout: 30)
            #expect(lint.status == 0 && lint.stdout.isEmpty && lint.stderr.isEmpty, "promtool: \(lint)")
            // Every delivery was measured; a replay's capture times are years old.
            #expect(accounting["filtered"] == 191 && accounting["delivered"] == 45)
            #expect(Self.value(metrics, "fastcapa_delivery_latency_seconds_count", "worker=\"0\"") == 45)
            #expect(Self.value(metrics, "fastcapa_delivery_latency_seconds_bucket", "worker=\"0\",le=\"+Inf\"") == 45)
            #expect(metrics.components(separatedBy: "# TYPE fastcapa_delivery_latency_seconds histogram").count == 2)
        }

        /// With no broker configured the probe publishes to its embedded broker, in its own memory:
        /// a warning at start, `fastcapa_embedded_broker 1`, and /health degraded with the reason (HTTP 200).
        @Test func theEmbeddedBrokerIsAWarningAMetricAndDegradedHealth() async throws {
            let sample = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
            let probe = try Harness.Child(
                Harness.binary,
                Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(sample)"]) + [
                    "--", "--stats-interval", "0", "--idle-exit", "3", "--metrics-address", "127.0.0.1:0",
                ]
            )
            let base = try await Self.address(probe)
            let metrics = try await Self.get("\(base)/metrics").body
            let health = try await Self.get("\(base)/health")
            #expect(Self.value(metrics, "fastcapa_embedded_broker") == 1, "\(metrics)")
            #expect(health.status == 200, "\(health)")
            #expect(health.body.hasPrefix("degraded: no Kafka broker configured: publishing to the embedded broker"))
            let result = probe.wait(timeout: 60)
            #expect(result.status == 0, "\(result.stderr)")
            let startLine = result.stderr.split(separator: "\n").first { $0.contains("no Kafka broker configured") }
            #expect(startLine?.contains(" warning ") == true, "\(startLine ?? "")")
            #expect(startLine?.contains("--require-broker") == true, "\(startLine ?? "")")
            #expect(result.stdout.contains("health degraded: no Kafka broker configured"), "\(result.stdout)")
        }

        @Test func liveCaptureLatencyIsMeasuredAndHealthFollowsTheProducers() async throws {
            let broker = try Harness.Broker()
            let probe = try Harness.Child(
                Harness.binary,
                Harness.eal(lcores: 3, vdevs: ["net_null0"]) + [
                    "--", "--stats-interval", "0", "--metrics-address", "127.0.0.1:0", "--testing-fault-signals",
                    "--max-restarts-per-minute", "1", "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            let base = try await Self.address(probe)
            try await Task.sleep(for: .seconds(2))
            let metrics = try await Self.get("\(base)/metrics").body
            // Wall-clock capture times: most deliveries within a second.
            let count = Self.value(metrics, "fastcapa_delivery_latency_seconds_count", "worker=\"0\"") ?? 0
            let withinSecond =
                Self.value(metrics, "fastcapa_delivery_latency_seconds_bucket", "worker=\"0\",le=\"1.0\"") ?? 0
            #expect(count > 1000)
            #expect(withinSecond > count / 2, "\(withinSecond) of \(count) within 1 s")
            probe.signal(SIGUSR2)
            var health = (status: 0, body: "")
            let deadline = Date().addingTimeInterval(10)
            repeat {
                try await Task.sleep(for: .milliseconds(100))
                health = try await Self.get("\(base)/health")
            } while health.status != 503 && Date() < deadline
            #expect(health.status == 503 && health.body.hasPrefix("unhealthy"), "\(health)")
            let after = try await Self.get("\(base)/metrics").body
            #expect(Self.value(after, "fastcapa_producer_restarts_total", "worker=\"0\"") == 1)
            #expect(Self.value(after, "fastcapa_producer_state", "worker=\"0\",state=\"unhealthy\"") == 1)
            #expect(Self.value(after, "fastcapa_producer_state", "worker=\"0\",state=\"healthy\"") == 0)
            probe.signal(SIGTERM)
            #expect(probe.wait(timeout: 60).status == 0)
        }
    }
}
