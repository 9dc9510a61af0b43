import FastcapaTestSupport
import Foundation
import Testing

extension EndToEnd {
    @Suite struct Load {
        /// Two receive queues, two transmit workers per ring (four producers),
        /// net_null generating at full speed: every packet is accounted for and
        /// the broker holds exactly what the probe says it delivered.
        @Test func multipleQueuesAndTransmitWorkersAccountForEveryPacket() throws {
            let broker = try Harness.Broker(partitions: 4)
            let result = try Harness.probe(
                for: 4,
                eal: Harness.eal(lcores: 7, vdevs: ["net_null0"]),
                [
                    "-q", "2", "--tx-workers", "2", "-x", "4096", "--stats-interval", "1",
                    "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            let accounting = result.accounting
            #expect(accounting["in_flight"] == 0)
            #expect((accounting["received"] ?? 0) > 0)
            #expect(result.accountingList("received_per_queue").count == 2)
            #expect(result.accountingList("received_per_queue").allSatisfy { $0 > 0 }, "both queues received")
            #expect(result.accountingList("delivered_per_worker").count == 4)
            #expect(
                result.accountingList("delivered_per_worker").allSatisfy { $0 > 0 },
                "all four transmit workers delivered"
            )
            #expect(result.stdout.contains("[kaf]"), "periodic statistics were printed")
            #expect(
                result.stdout.contains("[rx 1]") && result.stdout.contains("[kaf 3]"),
                "a line per queue and per worker"
            )
            #expect(try Harness.kcatCount(broker: broker.address, partitions: 4) == accounting["delivered"])
        }

        /// Each path to librdkafka: batches to the next partition in turn (the
        /// default), librdkafka's partitioner per message, a produce call per
        /// packet, delivery reports on a thread. Every partition gets its share,
        /// and the broker holds exactly what the probe counted as delivered.
        @Test(arguments: [
            [String](), ["--partitioner", "key"], ["--produce-call", "single"], ["--partitioner", "flow"],
            ["--delivery-reports", "thread"],
        ])
        func everyProducePathSpreadsOverThePartitionsAndAccounts(options: [String]) throws {
            let broker = try Harness.Broker(partitions: 3)
            let result = try Harness.probe(
                for: 2,
                eal: Harness.eal(lcores: 3, vdevs: ["net_null0"]),
                options + [
                    "--ring-full", "wait", "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            let accounting = result.accounting
            #expect(accounting["in_flight"] == 0)
            #expect((accounting["delivered"] ?? 0) > 10_000, "\(options)")
            #expect(accounting["dropped"] == 0, "\(options): ring-full wait and a healthy broker lose nothing")
            let counts = try Harness.kcatCounts(broker: broker.address, partitions: 3)
            #expect(counts.reduce(0, +) == accounting["delivered"], "\(options)")
            if options != ["--partitioner", "flow"] {
                // net_null's frames all have one flow; the other paths spread.
                let total = Double(counts.reduce(0, +))
                #expect(
                    counts.allSatisfy { Double($0) > total / 10 },
                    "\(options): every partition has its share: \(counts)"
                )
            } else {
                #expect(counts.filter { $0 > 0 }.count == 1, "one flow, one partition: \(counts)")
            }
            print(
                "produce path \(options.isEmpty ? "default" : options.joined(separator: " ")): per partition \(counts)"
            )
        }

        /// net_null at full speed into a ring of 64 slots: the ring overflows,
        /// the drops are counted, and the books still balance exactly.
        @Test func overloadDropsAreCountedAndTheBooksBalance() throws {
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                for: 3,
                eal: Harness.eal(lcores: 3, vdevs: ["net_null0"]),
                [
                    "-x", "64", "-w", "16", "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            let accounting = result.accounting
            let received = accounting["received"] ?? 0
            let ringFull = accounting["drop_ring_full"] ?? 0
            #expect(ringFull > 0, "a 64-slot ring must overflow under net_null")
            #expect(accounting["in_flight"] == 0)
            #expect(received == (accounting["delivered"] ?? 0) + (accounting["dropped"] ?? 0))
            #expect(try Harness.kcatCount(broker: broker.address, partitions: 1) == accounting["delivered"])
            print(
                "overload: received \(received), delivered \(accounting["delivered"] ?? 0), ring-full drops \(ringFull)"
            )
        }

        /// SIGTERM mid-stream with a healthy broker: the rings drain, Kafka is
        /// flushed, nothing is lost (ring-full wait keeps the replay lossless).
        @Test func sigtermMidStreamLosesNothing() throws {
            let directory = TestFiles.temporaryDirectory()
            let source = TestFiles.packageRoot.appendingPathComponent("Configs/sample.pcap").path
            let copy = directory.appendingPathComponent("small.pcap").path
            try FileManager.default.copyItem(atPath: source, toPath: copy)
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                for: 3,
                eal: Harness.eal(lcores: 3, vdevs: ["net_pcap0,rx_pcap=\(copy),infinite_rx=1"]),
                [
                    "--ring-full", "wait", "--stats-interval", "0", "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(result.status == 0, "\(result.stderr)")
            let accounting = result.accounting
            #expect((accounting["received"] ?? 0) > 1000)
            #expect(accounting["dropped"] == 0)
            #expect(accounting["delivered"] == accounting["received"])
            #expect(try Harness.kcatCount(broker: broker.address, partitions: 1) == accounting["delivered"])
        }

        /// No broker reachable: a graceful stop gives up after the drain timeout,
        /// counts what it could not deliver, and a second signal exits at once.
        @Test func drainTimeoutBoundsShutdownAndASecondSignalExitsAtOnce() throws {
            let eal = Harness.eal(lcores: 3, vdevs: ["net_null0"])
            let unreachable = ["-X", "bootstrap.servers=127.0.0.1:1", "--stats-interval", "0", "-x", "256"]

            let bounded = try Harness.Child(Harness.binary, eal + ["--", "--drain-timeout", "2"] + unreachable)
            sleep(2)
            let stopAsked = Date()
            bounded.signal(SIGTERM)
            let result = bounded.wait(timeout: 60)
            let stopTook = Date().timeIntervalSince(stopAsked)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            #expect(result.accounting["delivered"] == 0)
            #expect(result.accounting["in_flight"] == 0)
            #expect((result.accounting["drop_delivery_failed"] ?? 0) > 0)
            #expect(stopTook < 20, "drain timeout 2 s, stop took \(stopTook) s")

            let forced = try Harness.Child(Harness.binary, eal + ["--", "--drain-timeout", "60"] + unreachable)
            sleep(2)
            forced.signal(SIGTERM)
            sleep(1)
            let secondAsked = Date()
            forced.signal(SIGTERM)
            let forcedResult = forced.wait(timeout: 30)
            #expect(forcedResult.status == 3)
            #expect(!forcedResult.signaled)
            #expect(Date().timeIntervalSince(secondAsked) < 5)
        }
    }
}
