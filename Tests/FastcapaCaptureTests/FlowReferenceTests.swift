import FastcapaCapture
import FastcapaTestSupport
import PcapFormat
import Testing

/// The reference model of flow cutoff on cases small enough to check by hand,
/// then its idea of a flow against `FlowKey.parse`, record for record.
@Suite struct FlowReferenceTests {
    typealias Decision = FlowReference.Decision

    static let link = FrameBuilder()
    static let client: IPAddress = "10.0.0.1"
    static let server: IPAddress = "192.168.1.10"

    /// A UDP frame of exactly `length` bytes between the client's port `port` and the server's port 53.
    static func udp(port: UInt16 = 40_000, reply: Bool = false, length: Int = 60) -> [UInt8] {
        let payload = IPPayload.udp(
            UDPDatagram(sourcePort: reply ? 53 : port, destinationPort: reply ? port : 53, payload: [])
        )
        return reply
            ? link.reversed.ip(from: server, to: client, payload, frameLength: length)
            : link.ip(from: client, to: server, payload, frameLength: length)
    }

    static func decide(
        _ cutoff: FlowReference.Cutoff,
        _ records: [(frame: [UInt8], micros: UInt64)]
    ) -> [Decision] {
        cutoff.decide(records.map { (frame: $0.frame, originalLength: $0.frame.count, micros: $0.micros) })
    }

    // MARK: The reference's own rules

    @Test func bothDirectionsAreOneFlow() {
        let forward = FlowReference.identity(of: Self.udp())
        #expect(forward != nil)
        #expect(forward == FlowReference.identity(of: Self.udp(reply: true)))
        #expect(forward != FlowReference.identity(of: Self.udp(port: 40_001)))

        let cutoff = FlowReference.Cutoff(packets: 2, bytes: nil, timeoutMicros: 1_000, capacity: nil)
        let decisions = Self.decide(
            cutoff,
            [(Self.udp(), 0), (Self.udp(reply: true), 1), (Self.udp(), 2), (Self.udp(port: 40_001), 3)]
        )
        #expect(decisions == [.kept, .kept, .cut, .kept])
    }

    @Test func untrackedFramesAreNeverCutNorCounted() {
        let arp = Self.link.arpRequest(senderIP: IPv4Address("10.0.0.1"), targetIP: IPv4Address("10.0.0.2"))
        #expect(FlowReference.identity(of: arp) == nil)
        #expect(FlowReference.identity(of: Array(Self.udp().prefix(13))) == nil)
        // Cut inside the ports.
        #expect(FlowReference.identity(of: Array(Self.udp().prefix(14 + 20 + 3))) == nil)
        #expect(FlowReference.identity(of: Array(Self.udp().prefix(14 + 20 + 4))) != nil)

        let cutoff = FlowReference.Cutoff(packets: 0, bytes: nil, timeoutMicros: 1_000, capacity: 1)
        #expect(Self.decide(cutoff, [(arp, 0), (arp, 1), (Self.udp(), 2)]) == [.untracked, .untracked, .cut])
    }

    /// A packet is kept while the flow's bytes before it are below the limit;
    /// cut packets count too, and the original length counts, not the captured one.
    @Test func bytesBeforeThePacketDecide() {
        let cutoff = FlowReference.Cutoff(packets: nil, bytes: 120, timeoutMicros: 1_000, capacity: nil)
        let frame = Self.udp(length: 60)
        #expect(
            Self.decide(cutoff, [(frame, 0), (frame, 1), (frame, 2), (frame, 3)]) == [.kept, .kept, .cut, .cut]
        )
        #expect(
            FlowReference.Cutoff(packets: nil, bytes: 121, timeoutMicros: 1_000, capacity: nil)
                .decide([(frame, 60, 0), (frame, 60, 1), (frame, 60, 2), (frame, 60, 3)])
                == [.kept, .kept, .kept, .cut]
        )
        // Captured 60, originally 100: the second packet already has 100 bytes before it.
        #expect(cutoff.decide([(frame, 100, 0), (frame, 100, 1), (frame, 100, 2)]) == [.kept, .kept, .cut])
        #expect(
            FlowReference.Cutoff(packets: nil, bytes: 0, timeoutMicros: 1_000, capacity: nil).decide([(frame, 60, 0)])
                == [.cut]
        )
    }

    @Test func bothLimitsMustAllow() {
        let frame = Self.udp(length: 100)
        let records = (0..<4).map { (frame: frame, micros: UInt64($0)) }
        let packetsFirst = FlowReference.Cutoff(packets: 2, bytes: 1_000, timeoutMicros: 1_000, capacity: nil)
        let bytesFirst = FlowReference.Cutoff(packets: 10, bytes: 150, timeoutMicros: 1_000, capacity: nil)
        #expect(Self.decide(packetsFirst, records) == [.kept, .kept, .cut, .cut])
        #expect(Self.decide(bytesFirst, records) == [.kept, .kept, .cut, .cut])
        let bytesOnly = FlowReference.Cutoff(packets: nil, bytes: 150, timeoutMicros: 1_000, capacity: nil)
        #expect(Self.decide(bytesOnly, records) == [.kept, .kept, .cut, .cut])
        let neither = FlowReference.Cutoff(packets: nil, bytes: nil, timeoutMicros: 1_000, capacity: nil)
        #expect(Self.decide(neither, records) == [.kept, .kept, .kept, .kept])
    }

    /// A gap of exactly the timeout continues the flow; one microsecond more starts it again.
    @Test func timeoutBoundary() {
        let cutoff = FlowReference.Cutoff(packets: 1, bytes: nil, timeoutMicros: 1_000, capacity: nil)
        let frame = Self.udp()
        #expect(Self.decide(cutoff, [(frame, 5_000), (frame, 6_000), (frame, 7_001)]) == [.kept, .cut, .kept])
        #expect(Self.decide(cutoff, [(frame, 5_000), (frame, 6_001), (frame, 7_001)]) == [.kept, .kept, .cut])
    }

    /// An earlier time continues the flow and leaves its latest time where it was.
    @Test func earlierTimeContinuesAndKeepsTheLatest() {
        let cutoff = FlowReference.Cutoff(packets: 3, bytes: nil, timeoutMicros: 1_000, capacity: nil)
        let frame = Self.udp()
        // From 900 the gap to 1,800 is 900: the flow goes on (had 500 become the latest, it would restart).
        #expect(
            Self.decide(cutoff, [(frame, 0), (frame, 900), (frame, 500), (frame, 1_800)]) == [
                .kept, .kept, .kept, .cut,
            ]
        )
        // Far earlier still continues.
        #expect(
            Self.decide(cutoff, [(frame, 10_000), (frame, 1), (frame, 10_500), (frame, 10_600)]) == [
                .kept, .kept, .kept, .cut,
            ]
        )
    }

    /// With two slots: a third flow is kept uncounted until flows expire;
    /// expiry frees every expired slot at once, and an exact-timeout gap does not.
    @Test func tableFullThenFreed() {
        let cutoff = FlowReference.Cutoff(packets: 1, bytes: nil, timeoutMicros: 1_000, capacity: 2)
        let (a, b, c, d, e) = (
            Self.udp(port: 1), Self.udp(port: 2), Self.udp(port: 3), Self.udp(port: 4), Self.udp(port: 5)
        )
        #expect(
            Self.decide(
                cutoff,
                [
                    (a, 0), (b, 10), (c, 20), (c, 30), (a, 40),
                    // B expired (gap 1,030), A not (exactly 1,000): D takes B's slot.
                    (d, 1_040),
                    // A expired now; C was never counted, so it starts at 0.
                    (c, 1_050), (c, 1_060),
                    // D and C hold both slots.
                    (e, 1_070), (b, 1_080),
                ]
            ) == [
                .kept, .kept, .keptTableFull, .keptTableFull, .cut,
                .kept,
                .kept, .cut,
                .keptTableFull, .keptTableFull,
            ]
        )
        // A flow that expired but still holds its slot starts again from zero in that slot.
        #expect(Self.decide(cutoff, [(a, 0), (b, 10), (a, 2_000), (c, 2_001)]) == [.kept, .kept, .kept, .kept])
        #expect(
            Self.decide(cutoff, [(a, 0), (b, 1_500), (a, 2_000), (c, 2_001)]) == [.kept, .kept, .kept, .keptTableFull]
        )
    }

    @Test func unlimitedTableNeverFills() {
        let cutoff = FlowReference.Cutoff(packets: 1, bytes: nil, timeoutMicros: 1_000, capacity: nil)
        let records = (0..<500).map { (frame: Self.udp(port: UInt16(1_000 + $0)), micros: UInt64($0)) }
        #expect(Self.decide(cutoff, records).allSatisfy { $0 == .kept })
    }

    /// Which flows the table holds does not depend on the limits, so across
    /// limits the untracked and table-full packets stay put, and a higher
    /// limit keeps every packet a lower one keeps.
    @Test func higherLimitsKeepMore() {
        let records = FlowCorpus.records()
        let packetLimits: [Int?] = [0, 1, 3, 10, nil]
        let byteLimits: [Int?] = [0, 500, 5_000, nil]
        func decide(_ packets: Int?, _ bytes: Int?) -> [Decision] {
            FlowReference.Cutoff(packets: packets, bytes: bytes, timeoutMicros: FlowCorpus.timeoutMicros, capacity: 16)
                .decide(records)
        }
        let unlimited = decide(nil, nil)
        #expect(!unlimited.contains(.cut))
        var previousRow: [[Decision]] = []
        for packets in packetLimits {
            var row: [[Decision]] = []
            for bytes in byteLimits {
                let decisions = decide(packets, bytes)
                for (index, decision) in decisions.enumerated() where decision != .kept && decision != .cut {
                    #expect(
                        unlimited[index] == decision,
                        "record \(index) at packets \(packets as Any) bytes \(bytes as Any)"
                    )
                }
                for lower in [row.last, previousRow.isEmpty ? nil : previousRow[row.count]].compactMap({ $0 }) {
                    #expect(zip(lower, decisions).allSatisfy { $0.0 != .kept || $0.1 == .kept })
                }
                row.append(decisions)
            }
            previousRow = row
        }
    }

    // MARK: The reference's flows against FlowKey

    @Test func generatedCorpusCoversWhatItPromises() {
        let records = FlowCorpus.records()
        let cutoff = FlowReference.Cutoff(
            packets: 4,
            bytes: 3_000,
            timeoutMicros: FlowCorpus.timeoutMicros,
            capacity: 16
        )
        let decisions = cutoff.decide(records)
        for decision in [Decision.kept, .cut, .keptTableFull, .untracked] {
            #expect(decisions.contains(decision), "no \(decision) in the corpus")
        }
        #expect(records.contains { Int($0.originalLength) > $0.data.count && $0.data.count >= 14 })
        #expect(records.contains { $0.data.count < 14 })
        let identities = records.compactMap { FlowReference.identity(of: $0.data) }
        #expect(identities.contains { $0.vlanIDs.count > 8 })
        #expect(identities.contains { $0.vlanIDs.count == 2 })
        #expect(identities.contains { $0.ipVersion == 6 && $0.ipProtocol == 132 })
        #expect(Set(identities.map(\.ipProtocol)).isSuperset(of: [1, 6, 17, 47, 50, 58, 89, 132]))
        var gapsPastTimeout = 0
        var earlier = 0
        for (previous, next) in zip(records, records.dropFirst()) {
            if next.micros > previous.micros + FlowCorpus.timeoutMicros { gapsPastTimeout += 1 }
            if next.micros < previous.micros { earlier += 1 }
        }
        #expect(gapsPastTimeout > 10)
        #expect(earlier > 10)
    }

    @Test func referenceAgreesWithFlowKeyOnTheGeneratedCorpus() {
        let records = FlowCorpus.records() + FlowCorpus.records(seed: 28) + FilterCorpus.records()
        let disagreements = Self.disagreements(records)
        #expect(
            disagreements.isEmpty,
            "\(disagreements.count) disagreements:\n\(disagreements.prefix(5).joined(separator: "\n"))"
        )
    }

    @Test(.sharedCorpus) func referenceAgreesWithFlowKeyOnTheSharedCaptures() throws {
        let records = try SharedCorpus.records()
        let disagreements = Self.disagreements(records)
        #expect(
            disagreements.isEmpty,
            "\(disagreements.count) disagreements:\n\(disagreements.prefix(5).joined(separator: "\n"))"
        )
    }

    /// Where the reference and `FlowKey.parse` disagree: on whether a record
    /// is tracked, or on which records share a flow (the records grouped by
    /// identity and grouped by key must be the same groups).
    static func disagreements(_ records: [PcapRecord]) -> [String] {
        var keyOfIdentity: [FlowReference.Identity: (key: FlowKey, record: Int)] = [:]
        var identityOfKey: [FlowKey: (identity: FlowReference.Identity, record: Int)] = [:]
        var found: [String] = []
        func describe(_ index: Int) -> String {
            let data = records[index].data
            return "record \(index) (\(data.count) of \(records[index].originalLength) bytes): "
                + data.prefix(96).map { String($0, radix: 16) }.joined(separator: " ")
        }
        for (index, record) in records.enumerated() {
            let identity = FlowReference.identity(of: record.data)
            let key = record.data.withUnsafeBytes { FlowKey.parse($0) }
            switch (identity, key) {
            case (nil, nil):
                continue
            case (let identity?, nil):
                found.append("tracked by the reference as \(identity), untracked by FlowKey: \(describe(index))")
            case (nil, .some):
                found.append("untracked by the reference, tracked by FlowKey: \(describe(index))")
            case (let identity?, let key?):
                if let earlier = keyOfIdentity[identity], earlier.key != key {
                    found.append(
                        "one reference flow \(identity), two keys: \(describe(earlier.record)) and \(describe(index))"
                    )
                }
                if let earlier = identityOfKey[key], earlier.identity != identity {
                    found.append(
                        "one key, reference flows \(earlier.identity) and \(identity): \(describe(earlier.record)) and \(describe(index))"
                    )
                }
                keyOfIdentity[identity] = keyOfIdentity[identity] ?? (key, index)
                identityOfKey[key] = identityOfKey[key] ?? (identity, index)
            }
        }
        return found
    }
}
