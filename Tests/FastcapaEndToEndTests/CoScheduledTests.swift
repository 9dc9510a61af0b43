import FastcapaTestSupport
import Foundation
import Testing

extension EndToEnd {
    /// A queue whose receive and transmit lcores are given the same CPU runs both
    /// loops on one lcore, taking turns burst by burst (`CoScheduledWorker`); with
    /// a CPU each, the two lcores keep their own loops. Either way every packet is
    /// delivered or counted, and the broker holds what the probe says it delivered.
    @Suite struct CoScheduled {
        static let coScheduledLine = "receive and transmit worker 0 co-scheduled on lcore 1"

        /// Built captures, co-scheduled: each record exactly once, byte-identical, in
        /// order (the Fidelity suite's checks), the books balanced.
        @Test func builtCapturesComeBackExactlyOnceFromOneLcore() throws {
            let records = SyntheticCaptures.edgeCases + SyntheticCaptures.protocolMix(count: 300)
            let results = try Fidelity.captureAndReadBack(records, coScheduled: true)
            #expect(results.stderr.contains(Self.coScheduledLine), "\(results.stderr)")
            #expect(results.received.count == results.accounting["delivered"])
            #expect(
                results.received.count == records.count - (results.accounting["drop_malformed"] ?? 0),
                "every record but those net_pcap cannot deliver whole"
            )
        }

        /// net_null at full speed into a ring of 64 slots, co-scheduled and split:
        /// under `wait` nothing is lost after the NIC, under `drop` the ring's
        /// overflow is counted; the books balance and kcat reads what was delivered.
        @Test(arguments: [true, false], ["wait", "drop"])
        func fullRingsBalanceOnOneLcoreAndOnTwo(coScheduled: Bool, ringFull: String) throws {
            let broker = try Harness.Broker()
            let result = try Harness.probe(
                for: 3,
                eal: Harness.eal(lcores: 3, vdevs: ["net_null0"], coScheduled: coScheduled),
                [
                    "-x", "64", "-w", "16", "--ring-full", ringFull, "--stats-interval", "0",
                    "-X", "bootstrap.servers=\(broker.address)",
                ]
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.balanced)
            let accounting = result.accounting
            let received = accounting["received"] ?? 0
            let delivered = accounting["delivered"] ?? 0
            #expect(received > 10_000)
            #expect(accounting["in_flight"] == 0)
            #expect(received == delivered + (accounting["dropped"] ?? 0))
            if ringFull == "wait" {
                #expect(accounting["dropped"] == 0, "ring-full wait and a healthy broker lose nothing")
            } else {
                #expect((accounting["drop_ring_full"] ?? 0) > 0, "a 64-slot ring overflows under net_null")
            }
            if coScheduled {
                #expect(result.stderr.contains(Self.coScheduledLine), "\(result.stderr)")
            } else {
                #expect(result.stderr.contains("receive on lcore 1 (CPU 1), transmit worker 0 on lcore 2"))
                #expect(!result.stderr.contains("co-scheduled"))
            }
            #expect(try Harness.kcatCount(broker: broker.address, partitions: 1) == delivered)
            print(
                "\(coScheduled ? "co-scheduled" : "split"), ring-full \(ringFull): received \(received), delivered \(delivered), ring-full drops \(accounting["drop_ring_full"] ?? 0), waits \(accounting["ring_full_waits"] ?? 0)"
            )
        }
    }
}
