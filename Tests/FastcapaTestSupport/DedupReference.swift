import PcapFormat

/// A plain model of duplicate removal, written to be read rather than to be
/// fast: a frame is a duplicate when an earlier frame has the same captured
/// bytes and the same original length and was captured at most `windowMicros`
/// before it. Every earlier frame counts, duplicates too; an earlier frame
/// captured later than this one counts as 0 µs before it.
///
/// `editcap -w` decides the same on captures in time order whose equal
/// captured bytes always have equal original lengths (it compares the captured
/// bytes and length only, and skips frames captured later than the current one).
package enum DedupReference {
    /// For each record, whether it is a duplicate.
    package static func duplicates(_ records: [PcapRecord], windowMicros: UInt64) -> [Bool] {
        var earlier: [PcapRecord] = []
        var verdicts: [Bool] = []
        for record in records {
            let duplicate = earlier.contains { previous in
                let within = previous.micros >= record.micros || record.micros - previous.micros <= windowMicros
                return within && previous.data == record.data && previous.originalLength == record.originalLength
            }
            verdicts.append(duplicate)
            earlier.append(record)
        }
        return verdicts
    }

    /// The records that are not duplicates, in order.
    package static func kept(_ records: [PcapRecord], windowMicros: UInt64) -> [PcapRecord] {
        zip(records, duplicates(records, windowMicros: windowMicros)).filter { !$0.1 }.map(\.0)
    }
}
