import FastcapaTestSupport
import Foundation
import Testing

extension EndToEnd {
    /// The async failure suite: a probe replays a capture without end (net_pcap,
    /// infinite_rx) into a broker on loopback whose faults the test injects
    /// (librdkafka's mock cluster in `fastcapa broker --control`, and fatal
    /// producer errors through SIGUSR2 with --testing-fault-signals). Each
    /// scenario checks the books balance exactly after the drain, that receive
    /// never stalled (the counter trace, sampled every 10 ms, shows no gap over
    /// 100 ms), the restart count and the recovery time.
    @Suite struct Failures {
        /// A probe under test with its broker and its counter trace.
        final class FaultRun: @unchecked Sendable {
            let broker: Harness.Broker
            let probe: Harness.Child
            let trace: String
            let name: String

            init(
                _ name: String,
                brokers: Int = 1,
                idempotent: Bool = false,
                _ extra: [String] = [],
                config: String? = nil
            ) async throws {
                self.name = name
                broker = try Harness.Broker(brokers: brokers, control: true)
                trace = TestFiles.temporaryDirectory().appendingPathComponent("trace.txt").path
                let sample = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
                var arguments =
                    Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(sample),infinite_rx=1"]) + [
                        "--", "--stats-interval", "0", "--counter-trace", trace, "--testing-fault-signals",
                        "-X", "bootstrap.servers=\(broker.address)",
                    ]
                if idempotent { arguments += ["-X", "enable.idempotence=true"] }
                if let config { arguments += ["--config", config] }
                probe = try Harness.Child(Harness.binary, arguments + extra)
                // Warm up: capturing and delivering.
                let deadline = Date().addingTimeInterval(20)
                while Date() < deadline, (samples().last?.delivered ?? 0) == 0 {
                    try await Task.sleep(for: .milliseconds(50))
                }
                try await Task.sleep(for: .milliseconds(500))
            }

            struct Sample {
                var ms: Int
                var received: Int
                var delivered: Int
                var restarts: Int
            }

            func samples() -> [Sample] {
                let text = (try? String(contentsOfFile: trace, encoding: .utf8)) ?? ""
                return text.split(separator: "\n").compactMap { line in
                    let fields = line.split(separator: " ").compactMap { Int($0) }
                    return fields.count == 4
                        ? Sample(ms: fields[0], received: fields[1], delivered: fields[2], restarts: fields[3]) : nil
                }
            }

            /// Now, on the trace's clock.
            var nowMs: Int { samples().last?.ms ?? 0 }

            func stop() -> Harness.Result {
                probe.signal(SIGTERM)
                return probe.wait(timeout: 60)
            }

            /// The longest time the receive counter stood still.
            func longestReceiveGapMs() -> Int {
                var longest = 0
                var since: Int?
                var last: Sample?
                for sample in samples() {
                    if let previous = last, sample.received == previous.received {
                        let start = since ?? previous.ms
                        since = start
                        longest = max(longest, sample.ms - start)
                    } else {
                        since = nil
                    }
                    last = sample
                }
                return longest
            }

            /// From `ms` to the first delivery after it, waited for up to 15 s (nil: none came).
            func waitForDeliveries(after ms: Int) async throws -> Int? {
                let deadline = Date().addingTimeInterval(15)
                while Date() < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    if let resumed = deliveryResumedMs(after: ms) { return resumed }
                }
                return nil
            }

            /// From `ms` to the first delivery after it.
            func deliveryResumedMs(after ms: Int) -> Int? {
                let samples = samples()
                guard let base = samples.last(where: { $0.ms <= ms })?.delivered else { return nil }
                return samples.first { $0.ms > ms && $0.delivered > base }.map { $0.ms - ms }
            }

            /// The probe's own recovery times (fatal error noticed → new producer in place).
            static func recoveries(_ result: Harness.Result) -> [Double] {
                result.stderr.split(separator: "\n").compactMap { line in
                    guard let range = line.range(of: "recovery_seconds=") else { return nil }
                    return Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." })
                }
            }

            /// Checks what every scenario must hold, and reports its figures.
            func checkAndReport(_ result: Harness.Result, restarts: Int?, recoveryMs: Int?) {
                let accounting = result.accounting
                #expect(result.status == 0, "\(name): \(result.stderr.suffix(2000))")
                #expect(result.balanced, "\(name): received = delivered + dropped + in flight")
                #expect(accounting["in_flight"] == 0, "\(name)")
                #expect(
                    (accounting["received"] ?? 0)
                        == (accounting["filtered"] ?? 0) + (accounting["delivered"] ?? 0)
                            + (accounting["dropped"] ?? 0),
                    "\(name)"
                )
                if let restarts { #expect(accounting["restarts"] == restarts, "\(name): restarts") }
                #expect(!result.stderr.contains("bundle pool:"), "\(name): every bundle buffer handed back once")
                let gap = longestReceiveGapMs()
                #expect(gap <= 100, "\(name): receive stood still for \(gap) ms")
                #expect(samples().count > 100, "\(name): the counter trace was written")
                let probeRecoveries = Self.recoveries(result).map { String(format: "%.3f s", $0) }.joined(
                    separator: ", "
                )
                print(
                    "failure scenario \(name): restarts \(accounting["restarts"] ?? -1), "
                        + "recovery \(recoveryMs.map { "\($0) ms" } ?? "-")\(probeRecoveries.isEmpty ? "" : " (probe: \(probeRecoveries))"), "
                        + "longest receive gap \(gap) ms, received \(accounting["received"] ?? 0), delivered \(accounting["delivered"] ?? 0), "
                        + "re-produced \(accounting["reproduced"] ?? 0), delivery failed \(accounting["drop_delivery_failed"] ?? 0), "
                        + "ring full \(accounting["drop_ring_full"] ?? 0)"
                )
            }
        }

        /// Also with delivery reports served by a thread: the old producer's
        /// thread stops before the successor's starts, and nothing is lost; and
        /// with bundles, whose failed ones go to the successor with their buffers.
        @Test(arguments: [
            [String](), ["--delivery-reports", "thread"], ["--bundle-packets", "64"],
            ["--bundle-packets", "64", "--delivery-reports", "thread"],
        ])
        func fatalProducerErrorRestartsTheProducer(options: [String]) async throws {
            let run = try await FaultRun(
                "fatal error (rd_kafka_test_fatal_error)\(options.isEmpty ? "" : ", " + options.joined(separator: " "))",
                idempotent: true,
                options
            )
            let fault = run.nowMs
            run.probe.signal(SIGUSR2)
            try await Task.sleep(for: .seconds(2))
            let result = run.stop()
            run.checkAndReport(result, restarts: 1, recoveryMs: run.deliveryResumedMs(after: fault))
            #expect(result.stderr.contains("producer replaced"))
            #expect(
                result.accounting["drop_delivery_failed"] == 0,
                "messages the failed producer held were re-produced"
            )
            #expect(FaultRun.recoveries(result).allSatisfy { $0 < 1 })
        }

        @Test func outOfOrderSequenceWithIdempotenceRestartsTheProducer() async throws {
            let run = try await FaultRun("OUT_OF_ORDER_SEQUENCE_NUMBER, idempotence on", idempotent: true)
            let fault = run.nowMs
            run.broker.send("produce-errors OUT_OF_ORDER_SEQUENCE_NUMBER")
            try await Task.sleep(for: .seconds(3))
            let result = run.stop()
            run.checkAndReport(result, restarts: nil, recoveryMs: run.deliveryResumedMs(after: fault))
            #expect((result.accounting["restarts"] ?? 0) >= 1, "a fatal idempotence error replaces the producer")
        }

        @Test func allBrokersDownForFiveSecondsThenUp() async throws {
            let run = try await FaultRun("all brokers down 5 s")
            run.broker.send("down 1")
            try await Task.sleep(for: .seconds(5))
            let healed = run.nowMs
            run.broker.send("up 1")
            // librdkafka reconnects with a backoff (reconnect.backoff.max.ms, 10 s by default).
            let recovered = try await run.waitForDeliveries(after: healed)
            try await Task.sleep(for: .seconds(1))
            let result = run.stop()
            run.checkAndReport(result, restarts: 0, recoveryMs: recovered)
            #expect(result.stderr.contains("degraded: all brokers down"))
            #expect(recovered != nil, "deliveries resume once the broker is back")
        }

        @Test func oneOfThreeBrokersDown() async throws {
            let run = try await FaultRun("one of three brokers down", brokers: 3)
            run.broker.send("down 2")
            try await Task.sleep(for: .seconds(3))
            let healed = run.nowMs
            run.broker.send("up 2")
            try await Task.sleep(for: .seconds(2))
            let result = run.stop()
            run.checkAndReport(result, restarts: 0, recoveryMs: run.deliveryResumedMs(after: healed))
        }

        @Test func retriableProduceErrorsLoseNothing() async throws {
            let run = try await FaultRun("produce errors NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT")
            let fault = run.nowMs
            run.broker.send(
                "produce-errors NOT_LEADER_FOR_PARTITION NOT_LEADER_FOR_PARTITION REQUEST_TIMED_OUT REQUEST_TIMED_OUT"
            )
            try await Task.sleep(for: .seconds(3))
            let result = run.stop()
            run.checkAndReport(result, restarts: 0, recoveryMs: run.deliveryResumedMs(after: fault))
            #expect(result.accounting["drop_delivery_failed"] == 0, "librdkafka retries retriable errors")
        }

        @Test func messageSizeTooLargeIsCountedAsFailedDelivery() async throws {
            let run = try await FaultRun("produce error MSG_SIZE_TOO_LARGE")
            run.broker.send("produce-errors MSG_SIZE_TOO_LARGE")
            try await Task.sleep(for: .seconds(2))
            let result = run.stop()
            run.checkAndReport(result, restarts: 0, recoveryMs: nil)
            #expect((result.accounting["drop_delivery_failed"] ?? 0) > 0, "the refused request's messages are counted")
        }

        @Test func brokerRoundTripOf500Milliseconds() async throws {
            let run = try await FaultRun("broker RTT 500 ms", ["--slow-round-trip-ms", "200"])
            run.broker.send("rtt 1 500")
            try await Task.sleep(for: .seconds(3))
            #expect(
                run.probe.stderr.contains("degraded: broker round trip"),
                "librdkafka's statistics show the slow broker"
            )
            let healed = run.nowMs
            run.broker.send("rtt 1 0")
            try await Task.sleep(for: .seconds(1))
            let result = run.stop()
            run.checkAndReport(result, restarts: 0, recoveryMs: run.deliveryResumedMs(after: healed))
            #expect(result.accounting["drop_delivery_failed"] == 0)
        }

        @Test func deliveryTimeoutsAreCounted() async throws {
            let run = try await FaultRun(
                "delivery timeouts (message.timeout.ms 300)",
                ["-X", "message.timeout.ms=300"]
            )
            run.broker.send("down 1")
            try await Task.sleep(for: .seconds(2))
            let healed = run.nowMs
            run.broker.send("up 1")
            try await Task.sleep(for: .seconds(3))
            let result = run.stop()
            run.checkAndReport(result, restarts: 0, recoveryMs: run.deliveryResumedMs(after: healed))
            #expect((result.accounting["drop_delivery_failed"] ?? 0) > 0, "timed-out messages are counted as failed")
        }

        /// Ten fatal errors in a row: each new producer fails as soon as it is in
        /// place; the restarts back off, the probe reports unhealthy and stays up.
        @Test func restartStormBacksOffAndStaysUp() async throws {
            let run = try await FaultRun(
                "restart storm (10 fatal errors)",
                idempotent: true,
                ["--restart-backoff-ms", "20", "--restart-backoff-max", "1", "--max-restarts-per-minute", "5"]
            )
            for round in 1...10 {
                run.probe.signal(SIGUSR2)
                let deadline = Date().addingTimeInterval(10)
                while Date() < deadline
                    && run.probe.stderr.components(separatedBy: "producer replaced").count - 1 < round
                {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            try await Task.sleep(for: .milliseconds(500))
            let result = run.stop()
            run.checkAndReport(result, restarts: 10, recoveryMs: nil)
            #expect(result.stderr.contains("unhealthy"))
            let backoffs = result.stderr.split(separator: "\n").compactMap { line -> Double? in
                guard let range = line.range(of: "backoff_seconds=") else { return nil }
                return Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." })
            }
            #expect(backoffs.count == 10)
            #expect(backoffs.first == 0, "the first restart is immediate")
            #expect(
                zip(backoffs, backoffs.dropFirst()).allSatisfy { $0 <= $1 },
                "backoff never shrinks during a storm: \(backoffs)"
            )
            #expect(backoffs.allSatisfy { $0 <= 1 }, "capped at --restart-backoff-max")
        }

        @Test func sighupReloadsAValidFileAndRefusesAnInvalidOne() async throws {
            let config = TestFiles.temporaryDirectory().appendingPathComponent("fastcapa.yaml").path
            try "kafka:\n  linger.ms: 5\n".write(toFile: config, atomically: true, encoding: .utf8)
            let run = try await FaultRun("SIGHUP, valid then invalid file", config: config)
            try "kafka:\n  linger.ms: 20\nsnap-length: 128\n".write(toFile: config, atomically: true, encoding: .utf8)
            run.probe.signal(SIGHUP)
            try await Task.sleep(for: .seconds(1))
            #expect(run.probe.stderr.contains("SIGHUP: producer reloaded"))
            try "kafka:\n  linger.ms: [20\n".write(toFile: config, atomically: true, encoding: .utf8)
            run.probe.signal(SIGHUP)
            try await Task.sleep(for: .seconds(1))
            let result = run.stop()
            run.checkAndReport(result, restarts: 0, recoveryMs: nil)
            #expect(result.stderr.contains("the new configuration is refused"))
            #expect((result.accounting["truncated"] ?? 0) > 0, "the reloaded snap length applies at once")
        }

        /// A producer left failed (its restart held back by the backoff), the ring
        /// full and the receive worker waiting for room (`--ring-full wait`): a stop
        /// still ends within the drain timeout, with everything counted.
        @Test func sigtermWhileAProducerIsDownAndReceiveWaits() async throws {
            let run = try await FaultRun(
                "SIGTERM with a producer down and --ring-full wait",
                idempotent: true,
                [
                    "--ring-full", "wait", "--drain-timeout", "2", "--restart-backoff-ms", "60000",
                    "--restart-backoff-max", "60",
                ]
            )
            run.probe.signal(SIGUSR2)  // first restart: at once
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline && !run.probe.stderr.contains("producer replaced") {
                try await Task.sleep(for: .milliseconds(20))
            }
            run.probe.signal(SIGUSR2)  // second: held back for 60 s
            try await Task.sleep(for: .seconds(1))
            let asked = Date()
            let result = run.stop()
            let took = Date().timeIntervalSince(asked)
            #expect(took < 15, "stop took \(took) s with a 2 s drain timeout")
            #expect(result.status == 0, "\(result.stderr.suffix(1500))")
            #expect(result.balanced)
            #expect(result.accounting["in_flight"] == 0)
            #expect(result.accounting["restarts"] == 1)
            print(
                "failure scenario producer down, ring-full wait, SIGTERM: stopped in \(String(format: "%.1f", took)) s, "
                    + "drain timeout drops \(result.accounting["drop_drain_timeout"] ?? 0), ring full \(result.accounting["drop_ring_full"] ?? 0)"
            )
        }

        @Test func sigtermDuringAnOutageStopsWithinTheDrainTimeout() async throws {
            let run = try await FaultRun("SIGTERM during an outage", ["--drain-timeout", "2"])
            run.broker.send("down 1")
            try await Task.sleep(for: .seconds(1))
            let asked = Date()
            let result = run.stop()
            let took = Date().timeIntervalSince(asked)
            run.checkAndReport(result, restarts: 0, recoveryMs: nil)
            #expect(took < 15, "stop took \(took) s with a 2 s drain timeout")
            #expect(result.stdout.contains("accounting:"))
            print("failure scenario SIGTERM during an outage: stopped in \(String(format: "%.1f", took)) s")
        }

        /// Bundles through an outage that heals, and a stop during another: the
        /// books balance in packets, and what an outage holds is delivered or
        /// counted, each bundle's packets, never lost.
        @Test func bundlesThroughAnOutageAndAStopDuringOne() async throws {
            let options = ["--bundle-packets", "128", "--bundle-linger-us", "2000", "--drain-timeout", "2"]
            let run = try await FaultRun("bundles of 128: all brokers down 3 s, then a stop during an outage", options)
            run.broker.send("down 1")
            try await Task.sleep(for: .seconds(3))
            let healed = run.nowMs
            run.broker.send("up 1")
            let recovered = try await run.waitForDeliveries(after: healed)
            #expect(recovered != nil, "deliveries resume once the broker is back")
            run.broker.send("down 1")
            try await Task.sleep(for: .seconds(1))
            let result = run.stop()
            run.checkAndReport(result, restarts: 0, recoveryMs: recovered)
            let accounting = result.accounting
            #expect((accounting["bundles_sent"] ?? 0) > 0)
            #expect((accounting["bundles_delivered"] ?? 0) <= (accounting["bundles_sent"] ?? 0))
            #expect(
                (accounting["delivered"] ?? 0) > (accounting["bundles_delivered"] ?? 0),
                "bundles hold many packets"
            )
        }

        /// A probe capturing the sample without end into brokers named only in `config`, with /metrics.
        static func reloadRun(config: String, _ extra: [String] = []) async throws -> (Harness.Child, String) {
            let sample = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
            let probe = try Harness.Child(
                Harness.binary,
                Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(sample),infinite_rx=1"]) + [
                    "--", "--config", config, "--stats-interval", "0", "--metrics-address", "127.0.0.1:0",
                ] + extra
            )
            let base = try await EndToEnd.Metrics.address(probe)
            try await Task.sleep(for: .seconds(2))
            return (probe, base)
        }

        /// A SIGHUP whose configuration names no broker (or sets require-broker without one) is refused: the
        /// producers keep their brokers (replaced by ones with none, every packet would end as delivery_failed),
        /// the refusal is logged at error level and counted in fastcapa_reloads_refused_total.
        @Test func aReloadThatLosesTheBrokersIsRefusedAndCounted() async throws {
            let broker = try Harness.Broker()
            let config = TestFiles.temporaryDirectory().appendingPathComponent("fastcapa.yaml").path
            try "kafka:\n  bootstrap.servers: \(broker.address)\n".write(
                toFile: config,
                atomically: true,
                encoding: .utf8
            )
            let (probe, base) = try await Self.reloadRun(config: config)
            try "kafka:\n  linger.ms: 5\n".write(toFile: config, atomically: true, encoding: .utf8)
            probe.signal(SIGHUP)
            try await Reliability.waitFor("the new configuration is refused", in: probe)
            #expect(probe.stderr.contains("names no Kafka broker"), "\(probe.stderr.suffix(2000))")
            try "require-broker: true\n".write(toFile: config, atomically: true, encoding: .utf8)
            probe.signal(SIGHUP)
            let deadline = Date().addingTimeInterval(20)
            while probe.stderr.components(separatedBy: "the new configuration is refused").count < 3
                && Date() < deadline
            {
                try await Task.sleep(for: .milliseconds(50))
            }
            try await Task.sleep(for: .milliseconds(300))
            let metrics = try await EndToEnd.Metrics.get("\(base)/metrics").body
            #expect(EndToEnd.Metrics.value(metrics, "fastcapa_reloads_refused_total") == 2, "\(metrics)")
            let result = Reliability.stop(probe).result
            #expect(result.status == 0 && result.balanced, "\(result.stderr.suffix(2000))")
            #expect(!result.stderr.contains("SIGHUP: producer reloaded"))
            #expect(result.stderr.contains("error fastcapa:") && result.stderr.contains("require-broker is set"))
            #expect(result.accounting["drop_delivery_failed"] == 0 && (result.accounting["delivered"] ?? 0) > 0)
        }

        /// Everything a reload changes is checked before any of it applies. A new capture filter with properties
        /// librdkafka refuses only when it builds a producer (`acks=1` with idempotence): nothing is applied, the
        /// filter included (a swapped filter would belie the log's "keeping the running one").
        @Test func aReloadLibrdkafkaRefusesAppliesNothing() async throws {
            let broker = try Harness.Broker()
            let config = TestFiles.temporaryDirectory().appendingPathComponent("fastcapa.yaml").path
            let kafka = "kafka:\n  bootstrap.servers: \(broker.address)\n"
            try "filter: udp\n\(kafka)".write(toFile: config, atomically: true, encoding: .utf8)
            let (probe, _) = try await Self.reloadRun(config: config)
            try "filter: tcp\n\(kafka)  enable.idempotence: true\n  acks: 1\n"
                .write(toFile: config, atomically: true, encoding: .utf8)
            probe.signal(SIGHUP)
            try await Reliability.waitFor("the new configuration is refused", in: probe)
            try await Task.sleep(for: .milliseconds(500))
            let result = Reliability.stop(probe).result
            #expect(result.status == 0 && result.balanced, "\(result.stderr.suffix(2000))")
            #expect(result.stderr.contains("`acks` must be set to `all`"), "\(result.stderr.suffix(2000))")
            #expect(!result.stderr.contains("capture filter replaced"), "the filter was applied")
            #expect(
                result.stderr.contains("capture filter programs: 1 loaded, 1 freed"),
                "\(result.stderr.suffix(800))"
            )
            #expect(!result.stderr.contains("SIGHUP: producer reloaded"))
        }

        /// A reload publishes its producer before the old one has retired; when the new one fails
        /// fatally meanwhile, its restart builds from the properties it was built from (broker B), not from the
        /// old ones (broker A, which would take the capture back after the operator moved it).
        @Test func aRestartDuringAReloadBuildsFromTheNewProperties() async throws {
            let a = try Harness.Broker(control: true)
            let b = try Harness.Broker(control: true)
            let config = TestFiles.temporaryDirectory().appendingPathComponent("fastcapa.yaml").path
            func point(at broker: Harness.Broker) throws {
                try "kafka:\n  bootstrap.servers: \(broker.address)\n  enable.idempotence: true\n"
                    .write(toFile: config, atomically: true, encoding: .utf8)
            }
            try point(at: a)
            let (probe, _) = try await Self.reloadRun(config: config, ["--restart-backoff-ms", "1"])
            // A goes down: the old producer's messages stay in flight, so its retirement waits for A.
            a.send("down 1")
            try await Task.sleep(for: .milliseconds(500))
            // B fails the new producer fatally at its first produce (an idempotent sequence error).
            b.send("produce-errors OUT_OF_ORDER_SEQUENCE_NUMBER")
            try point(at: b)
            probe.signal(SIGHUP)
            try await Reliability.waitFor("producer failed fatally", in: probe)
            a.send("up 1")  // the retirement ends; the restart decided meanwhile runs after it
            try await Reliability.waitFor("producer replaced", in: probe, seconds: 40)
            func count(_ broker: Harness.Broker) throws -> Int {
                let result = try Harness.run(Harness.binary, ["watermarks", "-b", broker.address])
                return Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            }
            let before = (a: try count(a), b: try count(b))
            try await Task.sleep(for: .seconds(2))
            let after = (a: try count(a), b: try count(b))
            let result = Reliability.stop(probe).result
            #expect(result.status == 0 && result.balanced, "\(result.stderr.suffix(3000))")
            #expect(after.b > before.b, "the restarted producer publishes to B: \(before) → \(after)")
            #expect(after.a == before.a, "nothing goes back to A: \(before) → \(after)")
        }
    }
}
