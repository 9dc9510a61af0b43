import CDPDK
import FastcapaCapture
import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

/// Duplicate removal: the plain rules (`DedupReference`) against `editcap -w`,
/// and the probe's table (`DuplicateWindow`, in the test process's EAL) against
/// the plain rules, on bytes and on mbuf chains.
@Suite struct DuplicateWindowTests {
    static let start: UInt64 = 1_700_000_000_000_000
    static let editcap = ["/usr/bin/editcap", "/usr/local/bin/editcap"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static func table(entries: Int = 1 << 12, keySeed: UInt64 = 27) throws -> DuplicateWindow {
        _ = try FilterDifferential.shared()
        return try DuplicateWindow(entries: entries, socket: -1, queue: 0, keySeed: keySeed)
    }

    // MARK: - corpora

    /// Frames and their copies around the window `windowMicros`, in time order:
    /// copies exactly W, W − 1 and W + 1 µs after, chains of copies each within W
    /// of the one before (so only remembered duplicates make the later ones
    /// duplicates), copies at the same microsecond, a copy cut one byte shorter,
    /// runts from 1 byte and lengths around the digest's 8- and 32-byte steps, and
    /// truncated records (captured bytes fewer than the original length; copies of
    /// one frame always share it, as `editcap` compares the captured length only).
    static func boundaryCorpus(windowMicros: UInt64, seed: UInt64) -> [PcapRecord] {
        var random = SeededGenerator(seed: seed)
        let window = windowMicros
        let lengths = [1, 2, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40, 60, 63, 64, 65, 100, 128, 1_514, 9_000]
        var copyPatterns: [[UInt64]] = [[], [window], [window + 1], [0], [0, 0], [window + 1, window + 2]]
        if window >= 1 {
            copyPatterns += [
                [window - 1], [window - 1, 2 * window - 2, 3 * window - 3], [window - 1, 2 * window + 1],
            ]
        }
        let span = 40 * (window + 1)
        var records: [PcapRecord] = []
        for group in 0..<400 {
            let length = lengths[group % lengths.count]
            let data = random.bytes(length)
            let original = length >= 60 && random.percent(20) ? UInt32(length + random.int(1...1_000)) : UInt32(length)
            let first = start + UInt64(random.int(0...Int(span)))
            let pattern = group % 5 == 0 ? [UInt64(random.int(0...Int(3 * window)))] : random.pick(copyPatterns)
            records.append(PcapRecord(micros: first, data: data, originalLength: original))
            for offset in pattern {
                records.append(PcapRecord(micros: first + offset, data: data, originalLength: original))
            }
            if length > 1 && random.percent(10) {
                // The same bytes but one fewer: a different frame.
                let shorter = Array(data.dropLast())
                let originalShorter = original == UInt32(length) ? original - 1 : original
                records.append(PcapRecord(micros: first + window / 2, data: shorter, originalLength: originalShorter))
            }
        }
        return records.sorted { $0.micros < $1.micros }
    }

    /// Random traffic for the table: few distinct frames so copies are common,
    /// capture times mostly forward and now and then a little back, the same bytes
    /// sometimes with another original length.
    static func randomCorpus(count: Int, distinct: Int, windowMicros: UInt64, seed: UInt64) -> [PcapRecord] {
        var random = SeededGenerator(seed: seed)
        let frames = (0..<distinct).map { index -> [UInt8] in
            random.bytes(index % 7 == 0 ? random.int(1...40) : random.int(41...1_600))
        }
        var micros = start
        var records: [PcapRecord] = []
        for _ in 0..<count {
            switch random.int(0...99) {
            case 0..<5: micros -= UInt64(random.int(0...Int(windowMicros / 2 + 1)))
            case 5..<10: micros += windowMicros + UInt64(random.int(0...2))
            default: micros += UInt64(random.int(0...Int(windowMicros / 8 + 1)))
            }
            let data = random.pick(frames)
            let original = random.percent(5) ? UInt32(data.count + 4) : UInt32(data.count)
            records.append(PcapRecord(micros: micros, data: data, originalLength: original))
        }
        return records
    }

    // MARK: - the plain rules against editcap

    static func seconds(_ micros: UInt64) -> String {
        String(format: "%llu.%06llu", micros / 1_000_000, micros % 1_000_000)
    }

    static func describe(_ record: PcapRecord) -> String {
        "the record at \(record.micros) µs, \(record.data.count) of \(record.originalLength) bytes"
    }

    /// The records `editcap -w` keeps of `records`.
    static func editcapKeeps(_ records: [PcapRecord], windowMicros: UInt64) throws -> [PcapRecord] {
        let folder = TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.pcap")
        let output = folder.appendingPathComponent("out.pcap")
        try Data(PcapFile(records: records).bytes()).write(to: input)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(editcap))
        process.arguments = ["-w", seconds(windowMicros), "-F", "pcap", input.path, output.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "editcap exited with \(process.terminationStatus)")
        return try PcapFile(bytes: [UInt8](Data(contentsOf: output))).records
    }

    @Test(
        .enabled(if: editcap != nil, "editcap is not installed (Debian: wireshark-common)"),
        arguments: [0, 1, 2, 500, 1_000, 250_000] as [UInt64]
    )
    func theRulesKeepWhatEditcapKeeps(windowMicros: UInt64) throws {
        let records = Self.boundaryCorpus(windowMicros: windowMicros, seed: 27 + windowMicros)
        let expected = DedupReference.kept(records, windowMicros: windowMicros)
        let kept = try Self.editcapKeeps(records, windowMicros: windowMicros)
        // The corpus has duplicates to find and copies just outside the window to keep.
        #expect(expected.count < records.count)
        #expect(kept.count == expected.count, "editcap keeps \(kept.count), the rules \(expected.count)")
        if let first = zip(kept, expected).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            let (editcap, rules) = first.element
            Issue.record(
                "kept record \(first.offset): editcap \(Self.describe(editcap)), the rules \(Self.describe(rules))"
            )
        }
    }

    /// Where the rules and editcap part, and why the corpus above avoids it:
    /// editcap ignores the original length.
    @Test(.enabled(if: editcap != nil, "editcap is not installed (Debian: wireshark-common)"))
    func editcapIgnoresTheOriginalLength() throws {
        let data = [UInt8](repeating: 7, count: 64)
        let records = [
            PcapRecord(micros: Self.start, data: data, originalLength: 64),
            PcapRecord(micros: Self.start + 1, data: data, originalLength: 1_500),
        ]
        #expect(DedupReference.duplicates(records, windowMicros: 10) == [false, false])
        #expect(try Self.editcapKeeps(records, windowMicros: 10).count == 1)
    }

    // MARK: - the table against the plain rules

    /// The table's verdicts on `records`, in order.
    static func verdicts(_ table: DuplicateWindow, _ records: [PcapRecord], windowMicros: UInt64) -> [Bool] {
        records.map { record in
            record.data.withUnsafeBytes {
                table.isDuplicate(
                    bytes: $0,
                    originalLength: Int(record.originalLength),
                    micros: record.micros,
                    windowMicros: windowMicros
                )
            }
        }
    }

    @Test func boundariesOfTheWindow() throws {
        let table = try Self.table()
        defer { table.release() }
        let frame: [UInt8] = Array(0..<64)
        let window: UInt64 = 100
        let times = [
            Self.start,
            // Exactly W after: a duplicate, remembered at its time.
            Self.start + window,
            // W after that copy: a duplicate of the copy.
            Self.start + 2 * window,
            // W + 1 after the latest: not a duplicate.
            Self.start + 3 * window + 1,
            // Earlier than the latest remembered: 0 µs before it, a duplicate.
            Self.start,
        ]
        let records = times.map { PcapRecord(micros: $0, data: frame) }
        #expect(Self.verdicts(table, records, windowMicros: window) == [false, true, true, false, true])
        #expect(table.counters == DuplicateWindowCounters(duplicates: 3, evictedInWindow: 0))
        // Other lengths are other frames: one byte fewer captured, or another original length.
        let shorter = Array(frame.dropLast())
        #expect(
            !shorter.withUnsafeBytes {
                table.isDuplicate(bytes: $0, originalLength: 64, micros: Self.start, windowMicros: window)
            }
        )
        #expect(
            !frame.withUnsafeBytes {
                table.isDuplicate(bytes: $0, originalLength: 65, micros: Self.start, windowMicros: window)
            }
        )
    }

    @Test(arguments: [0, 1, 50, 1_000, 200_000] as [UInt64])
    func matchesTheRulesWhenLargeEnough(windowMicros: UInt64) throws {
        // 4 096 buckets for 3 000 frames: no bucket overflows with this key.
        let table = try Self.table(entries: 1 << 14, keySeed: windowMicros)
        defer { table.release() }
        let records =
            Self.randomCorpus(count: 3_000, distinct: 300, windowMicros: windowMicros, seed: windowMicros)
            + Self.boundaryCorpus(windowMicros: windowMicros, seed: windowMicros).map {
                var record = $0
                record.micros += 1_000_000_000
                return record
            }
        let expected = DedupReference.duplicates(records, windowMicros: windowMicros)
        let actual = Self.verdicts(table, records, windowMicros: windowMicros)
        let first = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }
        #expect(first == nil, "record \(first?.offset ?? 0): the table says \(first?.element.0 ?? false)")
        #expect(expected.contains(true) && expected.contains(false))
        #expect(table.counters.duplicates == UInt64(expected.filter { $0 }.count))
        #expect(table.counters.evictedInWindow == 0)
    }

    @Test(arguments: [100, 10_000] as [UInt64])
    func aSmallTableOnlyMisses(windowMicros: UInt64) throws {
        let table = try Self.table(entries: 16, keySeed: windowMicros)
        defer { table.release() }
        let records = Self.randomCorpus(count: 4_000, distinct: 200, windowMicros: windowMicros, seed: 5)
        let expected = DedupReference.duplicates(records, windowMicros: windowMicros)
        let actual = Self.verdicts(table, records, windowMicros: windowMicros)
        let invented = zip(actual, expected).enumerated().first { $0.element.0 && !$0.element.1 }
        #expect(invented == nil, "record \(invented?.offset ?? 0): a unique frame called a duplicate")
        let missed = zip(actual, expected).filter { !$0.0 && $0.1 }.count
        #expect(missed > 0)
        #expect(actual.contains(true))
        #expect(table.counters.evictedInWindow > 0)
    }

    @Test func sizesAreRoundedUpAndCheckedWithTheFix() throws {
        let table = try Self.table(entries: 1_000)
        #expect(table.entries == 1_024)
        table.release()
        #expect(DuplicateWindow.approximateBytes(entries: 1_024) == 16_384)
        do {
            _ = try DuplicateWindow(entries: 2, socket: -1, queue: 1)
            Issue.record("a table of 2 entries was made")
        } catch {
            #expect(error.fix.contains("--dedup-table-size"))
        }
        // The test EAL has 128 MiB; this needs 1 GiB.
        do {
            let huge = try DuplicateWindow(entries: 1 << 26, socket: -1, queue: 2)
            huge.release()
            Issue.record("a 1 GiB table fit in the test EAL's memory")
        } catch {
            #expect(error.problem.contains("receive queue 2"))
            #expect(error.fix.contains("lower --dedup-table-size"))
            #expect(error.fix.contains("EAL more memory"))
        }
    }

    // MARK: - mbufs

    /// `frame` in a chain of mbufs from the test pool, split before each of `cuts`
    /// (increasing, inside the frame).
    static func chain(_ frame: [UInt8], cuts: [Int]) throws -> OpaquePointer {
        let pool = try FilterDifferential.shared().pool
        let bounds = [0] + cuts + [frame.count]
        var head: OpaquePointer?
        for (lower, upper) in zip(bounds, bounds.dropFirst()) {
            let segment = try #require(rte_pktmbuf_alloc(pool))
            let data = try #require(rte_pktmbuf_append(segment, UInt16(upper - lower)))
            frame[lower..<upper].withUnsafeBytes {
                UnsafeMutableRawPointer(data).copyMemory(from: $0.baseAddress!, byteCount: upper - lower)
            }
            if let head {
                try #require(rte_pktmbuf_chain(head, segment) == 0)
            } else {
                head = segment
            }
        }
        let packet = try #require(head)
        #expect(Int(CDPDK_rte_mbuf_pkt_len(packet)) == frame.count)
        return packet
    }

    @Test func everyByteAndBothLengthsCount() throws {
        let table = try Self.table()
        defer { table.release() }
        var random = SeededGenerator(seed: 3)
        for length in 1...140 {
            let frame = random.bytes(length)
            var digests: Set<UInt64> = [frame.withUnsafeBytes { table.digest(bytes: $0, originalLength: length) }]
            for position in 0..<length {
                var changed = frame
                changed[position] ^= 0x01
                digests.insert(changed.withUnsafeBytes { table.digest(bytes: $0, originalLength: length) })
            }
            digests.insert(frame.withUnsafeBytes { table.digest(bytes: $0, originalLength: length + 1) })
            digests.insert(frame.dropLast().withUnsafeBytes { table.digest(bytes: $0, originalLength: length) })
            // A trailing zero byte is not the zero fill of the last block.
            digests.insert((frame + [0]).withUnsafeBytes { table.digest(bytes: $0, originalLength: length) })
            #expect(digests.count == length + 4, "\(length) bytes")
        }
    }

    @Test func theDigestIsTheSameWhereverTheFrameIsSplit() throws {
        let table = try Self.table()
        defer { table.release() }
        var random = SeededGenerator(seed: 9)
        for length in [2, 9, 33, 70, 131] {
            let frame = random.bytes(length)
            let whole = frame.withUnsafeBytes { table.digest(bytes: $0, originalLength: length) }
            for cut in 1..<length {
                let packet = try Self.chain(frame, cuts: [cut])
                defer { CDPDK_rte_pktmbuf_free(packet) }
                #expect(table.digest(packet) == whole, "\(length) bytes cut at \(cut)")
            }
            for _ in 0..<50 {
                let cuts = Set((0..<random.int(2...5)).map { _ in random.int(1...length - 1) }).sorted()
                let packet = try Self.chain(frame, cuts: cuts)
                defer { CDPDK_rte_pktmbuf_free(packet) }
                #expect(table.digest(packet) == whole, "\(length) bytes cut at \(cuts)")
            }
        }
        // Jumbo frames across 2 KiB segments, as net_pcap fills them.
        let jumbo = random.bytes(9_000)
        let packet = try FilterDifferential.shared().mbuf(jumbo)
        defer { CDPDK_rte_pktmbuf_free(packet) }
        #expect(CDPDK_rte_mbuf_nb_segs(packet) > 1)
        #expect(table.digest(packet) == jumbo.withUnsafeBytes { table.digest(bytes: $0, originalLength: 9_000) })
    }

    @Test func mbufChainsMatchTheRules() throws {
        let window: UInt64 = 500
        let table = try Self.table(entries: 1 << 12)
        defer { table.release() }
        var random = SeededGenerator(seed: 11)
        // An mbuf's original length is its pkt_len.
        let records = Self.randomCorpus(count: 1_500, distinct: 150, windowMicros: window, seed: 11).map {
            PcapRecord(micros: $0.micros, data: $0.data)
        }
        let expected = DedupReference.duplicates(records, windowMicros: window)
        for (index, record) in records.enumerated() {
            let cuts =
                record.data.count > 1 && random.percent(50)
                ? Set((0..<random.int(1...3)).map { _ in random.int(1...record.data.count - 1) }).sorted() : []
            let packet = try Self.chain(record.data, cuts: cuts)
            defer { CDPDK_rte_pktmbuf_free(packet) }
            let actual = table.isDuplicate(packet, micros: record.micros, windowMicros: window)
            guard actual == expected[index] else {
                Issue.record("record \(index) in \(cuts.count + 1) segments: the table says \(actual)")
                break
            }
        }
        #expect(expected.contains(true))
        #expect(table.counters.evictedInWindow == 0)
    }
}
