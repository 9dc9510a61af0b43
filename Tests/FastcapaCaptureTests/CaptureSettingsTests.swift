import FastcapaKafka
import Testing

@testable import FastcapaCapture

@Suite struct CaptureSettingsTests {
    @Test(arguments: [0, 3, 1000, 1 << 29, -8])
    func ringSizeMustBeAPowerOfTwo(_ size: Int) {
        var settings = CaptureSettings()
        settings.ringSize = size
        #expect(throws: CaptureSettings.Invalid.self) { try settings.validate() }
    }

    @Test func everyRangeIsChecked() {
        let mutations: [(inout CaptureSettings) -> Void] = [
            { $0.rxBurst = 0 }, { $0.rxBurst = 1025 }, { $0.txBurst = 0 }, { $0.rxDescriptors = 0 },
            { $0.rxQueues = 0 }, { $0.txWorkersPerRing = 0 }, { $0.snapLength = 0 }, { $0.maxRebursts = -1 },
            { $0.queueFullRetries = -1 }, { $0.idleSleepMaxMicros = -1 }, { $0.topic = "" }, { $0.topic = ".." },
            { $0.topic = String(repeating: "a", count: 250) }, { $0.topic = "a/b" }, { $0.portMask = 0 },
        ]
        for mutate in mutations {
            var settings = CaptureSettings()
            mutate(&settings)
            #expect(throws: CaptureSettings.Invalid.self) { try settings.validate() }
        }
        #expect(throws: Never.self) { try CaptureSettings().validate() }
    }

    @Test func refusalsNameTheSettingByItsKeyAndSayWhatToDo() {
        var settings = CaptureSettings()
        settings.rxBurst = 4096
        #expect {
            try settings.validate()
        } throws: { error in
            guard let invalid = error as? CaptureSettings.Invalid else { return false }
            return invalid.key == "rx-burst" && invalid.name == "receive burst"
                && invalid.fix.hasPrefix("Use 1 to 1024")
        }
    }

    @Test func controlCoresParseAndPrintBack() throws {
        #expect(try ControlCores(parsing: "auto") == .auto)
        #expect(try ControlCores(parsing: "main-lcore") == .mainLcore)
        #expect(try ControlCores(parsing: "0") == .cpus([0]))
        #expect(try ControlCores(parsing: " 5-7,0 ,2") == .cpus([0, 2, 5, 6, 7]))
        #expect(try ControlCores(parsing: "1,1-2") == .cpus([1, 2]))
        #expect(ControlCores.cpus([0, 2, 5, 6, 7]).description == "0,2,5-7")
        for bad in ["", "x", "1-", "-1", "3-1", "1,,2", "1.5", "99999"] {
            #expect(throws: CaptureSettings.Invalid.self, "'\(bad)'") { try ControlCores(parsing: bad) }
        }
    }

    /// received = delivered + dropped + in flight, with in flight measured where
    /// packets wait (the ring, librdkafka's queue), not derived from the counters.
    @Test func aSnapshotBalancesWithWhatIsMeasuredInFlight() {
        let snapshot = Self.snapshot(delivered: 70)
        #expect(snapshot.dropped == 18)
        #expect(snapshot.inFlight == 5 + 7)
        #expect(snapshot.balances)
    }

    /// Delivered and failed must not cancel out of the sum (in flight is measured, not produced − delivered −
    /// failed): a delivery report counted twice would balance anyway. A miscount shows, as a signed difference.
    @Test func aMiscountedDeliveryReportDoesNotBalance() {
        let twice = Self.snapshot(delivered: 71)
        #expect(!twice.balances)
        #expect(twice.imbalance == -1)
        let missing = Self.snapshot(delivered: 69)
        #expect(!missing.balances)
        #expect(missing.imbalance == 1)
    }

    /// Counters sampled one by one while the workers run can be ahead of each
    /// other: in flight is then slightly off, never a wrapped 1.8e19.
    @Test func inFlightNeverWraps() {
        var snapshot = Self.snapshot(delivered: 70)
        snapshot.perWorker[0].produced = 80
        snapshot.perWorker[0].dequeued = 79  // read before the worker counted one more
        #expect(snapshot.held == -6)
        #expect(abs(snapshot.inFlight) < 100)
        snapshot.workersStopped = true
        #expect(snapshot.held == 0, "once the workers returned they hold nothing")
    }

    static func snapshot(delivered: UInt64) -> CaptureSnapshot {
        var queue = ReceiveCounts()
        queue.received = 100
        queue.enqueued = 90
        queue.drops[.ringFull] = 10
        var worker = TransmitCounts()
        worker.dequeued = 85
        worker.produced = 80
        worker.delivered = delivered
        worker.drops[.deliveryFailed] = 3
        worker.drops[.tooLarge] = 5
        var producer = ProducerSample()
        producer.kafkaQueued = 7
        return CaptureSnapshot(perQueue: [queue], perWorker: [worker], ringDepths: [5], producers: [producer])
    }
}
