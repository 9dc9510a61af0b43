import FastcapaCapture
import FastcapaTestSupport
import Testing

/// The flow table's rules, packet by packet, on DPDK's rte_hash in the test
/// process's EAL (`FilterDifferential.shared()` starts it once).
@Suite struct FlowTableTests {
    static let second: UInt64 = 1_000_000
    static let timeout = 120 * second

    /// The key of UDP flow `flow` (10.x.y.z:40000 with 192.168.0.1:53), either direction.
    static func key(_ flow: Int, reply: Bool = false) -> FlowKey {
        var frame = [UInt8](repeating: 0, count: 42)
        frame[12] = 0x08
        frame[14] = 0x45
        frame[23] = 17
        let client: [UInt8] = [
            10, UInt8(truncatingIfNeeded: flow >> 16), UInt8(truncatingIfNeeded: flow >> 8),
            UInt8(truncatingIfNeeded: flow),
        ]
        let server: [UInt8] = [192, 168, 0, 1]
        let clientPort: [UInt8] = [0x9C, 0x40]
        let serverPort: [UInt8] = [0, 53]
        frame.replaceSubrange(26..<30, with: reply ? server : client)
        frame.replaceSubrange(30..<34, with: reply ? client : server)
        frame.replaceSubrange(34..<36, with: reply ? serverPort : clientPort)
        frame.replaceSubrange(36..<38, with: reply ? clientPort : serverPort)
        return frame.withUnsafeBytes { FlowKey.parse($0)! }
    }

    static func table(capacity: Int = 1_024) throws -> FlowTable {
        _ = try FilterDifferential.shared()
        return try FlowTable(capacity: capacity, socket: -1, queue: 0)
    }

    /// The verdicts of packets of one flow, of these lengths, a microsecond apart.
    static func verdicts(_ lengths: [Int], _ cutoff: FlowCutoff, flow: Int = 1) throws -> [FlowVerdict] {
        let table = try table()
        defer { table.release() }
        return lengths.enumerated().map { index, length in
            table.admit(key(flow), originalLength: length, micros: 1_000 + UInt64(index), cutoff: cutoff)
        }
    }

    @Test func packetsOnlyKeepsTheFirstN() throws {
        let verdicts = try Self.verdicts(
            [100, 100, 100, 100, 100],
            FlowCutoff(packets: 3, timeoutMicros: Self.timeout)
        )
        #expect(verdicts == [.kept, .kept, .kept, .cut, .cut])
    }

    @Test func bytesOnlyCountsTheTotalsBeforeThePacket() throws {
        // 600 + 300 = 900 < 1000: the third packet is kept and crosses B; the fourth is cut.
        let verdicts = try Self.verdicts([600, 300, 500, 1, 1], FlowCutoff(bytes: 1_000, timeoutMicros: Self.timeout))
        #expect(verdicts == [.kept, .kept, .kept, .cut, .cut])
        let exact = try Self.verdicts([600, 400, 1], FlowCutoff(bytes: 1_000, timeoutMicros: Self.timeout))
        #expect(exact == [.kept, .kept, .cut])
    }

    @Test func bothKeepWhileEachAllows() throws {
        // Bytes cut first.
        let bytesFirst = try Self.verdicts(
            [500, 500, 10, 10],
            FlowCutoff(packets: 3, bytes: 1_000, timeoutMicros: Self.timeout)
        )
        #expect(bytesFirst == [.kept, .kept, .cut, .cut])
        // Packets cut first.
        let packetsFirst = try Self.verdicts(
            [10, 10, 10, 10],
            FlowCutoff(packets: 2, bytes: 1_000, timeoutMicros: Self.timeout)
        )
        #expect(packetsFirst == [.kept, .kept, .cut, .cut])
        let zero = try Self.verdicts([10, 10], FlowCutoff(packets: 0, timeoutMicros: Self.timeout))
        #expect(zero == [.cut, .cut])
    }

    @Test func noLimitKeepsEverythingAndCounts() throws {
        let table = try Self.table()
        defer { table.release() }
        for index in 0..<5 {
            #expect(
                table.admit(Self.key(index % 2), originalLength: 60, micros: 1, cutoff: FlowCutoff(timeoutMicros: 1))
                    == .kept
            )
        }
        #expect(table.counters.activeFlows == 2)
        #expect(table.counters.created == 2)
    }

    /// The verdicts of 60-byte packets of flow 1 captured at these times, in this order.
    static func verdicts(at times: [UInt64], _ cutoff: FlowCutoff, in table: FlowTable) -> [FlowVerdict] {
        times.map { table.admit(key(1), originalLength: 60, micros: $0, cutoff: cutoff) }
    }

    @Test func timeoutBoundary() throws {
        let table = try Self.table()
        defer { table.release() }
        let start: UInt64 = 1_700_000_000 * Self.second
        let times = [
            start,
            // Exactly the timeout after the latest packet: the same flow, twice.
            start + Self.timeout, start + 2 * Self.timeout,
            // One microsecond more than the timeout: forgotten, a new flow.
            start + 3 * Self.timeout + 1, start + 3 * Self.timeout + 1,
        ]
        let verdicts = Self.verdicts(at: times, FlowCutoff(packets: 1, timeoutMicros: Self.timeout), in: table)
        #expect(verdicts == [.kept, .cut, .cut, .kept, .cut])
        #expect(table.counters.created == 2)
        #expect(table.counters.expired == 1)
        #expect(table.counters.activeFlows == 1)
    }

    @Test func anEarlierCaptureTimeContinuesTheFlow() throws {
        let table = try Self.table()
        defer { table.release() }
        let start: UInt64 = 10 * Self.timeout
        // Far earlier times continue the flow and leave its latest at `start`, so a packet
        // the timeout after `start` (far more than the timeout after them) is still the same flow.
        let times = [start, 1, 2, start + Self.timeout]
        let verdicts = Self.verdicts(at: times, FlowCutoff(packets: 2, timeoutMicros: Self.timeout), in: table)
        #expect(verdicts == [.kept, .kept, .cut, .cut])
        #expect(table.counters.created == 1)
        #expect(table.counters.expired == 0)
    }

    @Test func bothDirectionsShareCounts() throws {
        #expect(Self.key(7) == Self.key(7, reply: true))
        let table = try Self.table()
        defer { table.release() }
        let cutoff = FlowCutoff(packets: 3, timeoutMicros: Self.timeout)
        let verdicts = [false, true, false, true, true].enumerated().map { index, reply in
            table.admit(Self.key(7, reply: reply), originalLength: 60, micros: UInt64(index), cutoff: cutoff)
        }
        #expect(verdicts == [.kept, .kept, .kept, .cut, .cut])
        #expect(table.counters.activeFlows == 1)
    }

    @Test(arguments: [8, 100, 1_024, 5_000])
    func exactlyCapacityFlowsFit(capacity: Int) throws {
        let table = try Self.table(capacity: capacity)
        defer { table.release() }
        let cutoff = FlowCutoff(packets: 1, timeoutMicros: Self.timeout)
        for flow in 0..<capacity {
            #expect(table.admit(Self.key(flow), originalLength: 60, micros: 1, cutoff: cutoff) == .kept)
        }
        #expect(table.counters.activeFlows == UInt64(capacity))
        #expect(table.counters.tableFull == 0)
        #expect(table.admit(Self.key(capacity), originalLength: 60, micros: 1, cutoff: cutoff) == .keptTableFull)
        #expect(table.counters.tableFull == 1)
        // The flows in the table are still there, counted.
        for flow in 0..<capacity {
            #expect(table.admit(Self.key(flow), originalLength: 60, micros: 2, cutoff: cutoff) == .cut)
        }
        #expect(table.counters.created == UInt64(capacity))
    }

    @Test func aFullTableFailsOpenThenTakesNewFlowsOnceOldOnesExpire() throws {
        let capacity = 200
        let table = try Self.table(capacity: capacity)
        defer { table.release() }
        let cutoff = FlowCutoff(packets: 1, timeoutMicros: Self.timeout)
        for flow in 0..<capacity {
            _ = table.admit(Self.key(flow), originalLength: 60, micros: 1, cutoff: cutoff)
        }
        // Full, nothing expired: new flows are kept untracked, every packet of them.
        for _ in 0..<3 {
            #expect(table.admit(Self.key(capacity), originalLength: 60, micros: 2, cutoff: cutoff) == .keptTableFull)
        }
        #expect(table.counters.tableFull == 3)
        #expect(table.counters.activeFlows == UInt64(capacity))

        // Half the flows stay live, the rest expire.
        let late = 1 + Self.timeout + 1
        for flow in 0..<(capacity / 2) {
            #expect(table.admit(Self.key(flow), originalLength: 60, micros: Self.timeout, cutoff: cutoff) == .cut)
        }
        // Every sweep reclaims some; new flows get in until the expired ones are all replaced.
        var admitted = 0
        var refused = 0
        for flow in capacity..<(capacity + capacity) {
            switch table.admit(Self.key(flow), originalLength: 60, micros: late, cutoff: cutoff) {
            case .kept: admitted += 1
            case .keptTableFull: refused += 1
            case .cut: Issue.record("a new flow was cut")
            }
        }
        #expect(admitted == capacity / 2)
        #expect(refused == capacity / 2)
        #expect(table.counters.expired == UInt64(capacity / 2))
        #expect(table.counters.activeFlows == UInt64(capacity))
        #expect(table.counters.created == UInt64(capacity + capacity / 2))
        // The live flows kept their counts.
        for flow in 0..<(capacity / 2) {
            #expect(table.admit(Self.key(flow), originalLength: 60, micros: late, cutoff: cutoff) == .cut)
        }
    }

    /// The rules written plainly: a dictionary of flows, and a full table that
    /// forgets every expired flow before it refuses one. The table's sweep sees
    /// every entry when it holds no more than `FlowTable.sweepBudget` flows.
    struct Model {
        var flows: [Int: (packets: UInt64, bytes: UInt64, latest: UInt64)] = [:]
        let capacity: Int

        mutating func admit(_ flow: Int, length: Int, micros: UInt64, cutoff: FlowCutoff) -> FlowVerdict {
            func expired(_ latest: UInt64) -> Bool { micros > latest && micros - latest > cutoff.timeoutMicros }
            var state = flows[flow] ?? (0, 0, micros)
            if flows[flow] == nil && flows.count == capacity {
                flows = flows.filter { !expired($0.value.latest) }
                if flows.count == capacity { return .keptTableFull }
            }
            if expired(state.latest) { state = (0, 0, micros) }
            var kept = true
            if let packets = cutoff.packets, state.packets >= packets { kept = false }
            if let bytes = cutoff.bytes, state.bytes >= bytes { kept = false }
            flows[flow] = (state.packets + 1, state.bytes + UInt64(length), max(state.latest, micros))
            return kept ? .kept : .cut
        }
    }

    @Test(arguments: [16, 1_024])
    func matchesThePlainRulesOnRandomTraffic(capacity: Int) throws {
        let cutoffs = [
            FlowCutoff(packets: 3, timeoutMicros: 60 * Self.second),
            FlowCutoff(bytes: 2_000, timeoutMicros: 60 * Self.second),
            FlowCutoff(packets: 5, bytes: 4_000, timeoutMicros: 60 * Self.second),
            FlowCutoff(timeoutMicros: 60 * Self.second),
        ]
        for (index, cutoff) in cutoffs.enumerated() {
            let table = try Self.table(capacity: capacity)
            defer { table.release() }
            var model = Model(capacity: capacity)
            var random = SeededGenerator(seed: UInt64(index + capacity))
            var micros: UInt64 = 1_000 * Self.second
            var verdicts: [FlowVerdict: Int] = [:]
            for packet in 0..<5_000 {
                // Mostly forward, now and then past the timeout, sometimes back in time.
                switch random.int(0...99) {
                case 0..<3: micros += 61 * Self.second
                case 3..<8: micros -= UInt64(random.int(0...30)) * Self.second
                default: micros += UInt64(random.int(0...2_000_000))
                }
                let flow = random.int(0...39)
                let length = random.int(60...1_500)
                let key = Self.key(flow, reply: random.int(0...1) == 1)
                let expected = model.admit(flow, length: length, micros: micros, cutoff: cutoff)
                let actual = table.admit(key, originalLength: length, micros: micros, cutoff: cutoff)
                guard actual == expected else {
                    Issue.record(
                        "cutoff \(index), packet \(packet), flow \(flow): \(actual), the rules say \(expected)"
                    )
                    break
                }
                verdicts[actual, default: 0] += 1
            }
            #expect(table.counters.activeFlows <= UInt64(capacity))
            // The corpus reaches every verdict it can: cuts where a limit is set, a full table when it is small.
            #expect(verdicts[.kept, default: 0] > 0)
            #expect((verdicts[.cut, default: 0] > 0) == (cutoff.packets != nil || cutoff.bytes != nil))
            #expect((verdicts[.keptTableFull, default: 0] > 0) == (capacity < 40))
        }
    }

    @Test func sizeOutOfRangeSaysWhatToUse() throws {
        _ = try FilterDifferential.shared()
        #expect(throws: CaptureError.self) { try FlowTable(capacity: 4, socket: -1, queue: 0) }
        do {
            _ = try FlowTable(capacity: 4, socket: -1, queue: 3)
        } catch {
            #expect(error.fix.contains("--flow-table-size"))
        }
    }

    @Test func tooLargeForTheMemoryNamesTheSizeAndTheFix() throws {
        _ = try FilterDifferential.shared()
        // The test EAL has 128 MiB; this needs several GiB.
        do {
            let table = try FlowTable(capacity: 64_000_000, socket: -1, queue: 2)
            table.release()
            Issue.record("64 M flows fit in the test EAL's memory")
        } catch {
            #expect(error.problem.contains("receive queue 2"))
            #expect(error.fix.contains("MiB"))
            #expect(error.fix.contains("lower --flow-table-size"))
        }
    }
}
