import FastcapaKafka
import Testing

/// Every field of the message contract (Documentation/MessageFormat.md)
/// written and read back through `MessageContract`, against the bytes and
/// names the document gives: no broker needed.
@Suite struct MessageContractTests {
    @Test func keysAreEightBytesBigEndianMicroseconds() {
        let micros: UInt64 = 1_213_789_568_367_761
        let bytes: [UInt8] = [0x00, 0x04, 0x4F, 0xEF, 0x68, 0x0D, 0xFC, 0x91]
        #expect(MessageContract.keyLength == 8)
        #expect(MessageContract.keyBytes(micros: micros) == bytes)
        #expect(MessageContract.micros(key: bytes) == micros)
        // The word the transmit path stores holds the same bytes in memory order.
        var word = MessageContract.key(micros: micros)
        #expect(withUnsafeBytes(of: &word) { Array($0) } == bytes)
        #expect(MessageContract.micros(key: &word, length: 8) == micros)
        for edge: UInt64 in [0, 1, .max] {
            #expect(MessageContract.micros(key: MessageContract.keyBytes(micros: edge)) == edge)
        }
    }

    @Test func aKeyOfAnotherLengthIsRefused() {
        #expect(MessageContract.micros(key: [1, 2, 3]) == nil)
        #expect(MessageContract.micros(key: []) == nil)
        #expect(MessageContract.micros(key: [UInt8](repeating: 0, count: 9)) == nil)
        #expect(MessageContract.micros(key: nil, length: 8) == nil)
        #expect(
            MessageContract.keyRefusal(partition: 2, offset: 17, topic: "pcap", length: 3)
                == "the message at partition 2 offset 17 of topic 'pcap' has a key of 3 bytes, not 8: "
                + "this is not a topic fastcapa wrote (its keys are capture times)"
        )
    }

    @Test func headersAreNamedAndValuedAsDocumented() {
        #expect(MessageContract.originalLengthName == "orig_len")
        #expect(MessageContract.Header.allCases.map(\.name) == ["port", "queue", "probe", "time_ns"])
        // time_ns has no fixed value: it is set per message (ProducevaArguments).
        let all = MessageContract.headers(MessageContract.Header.allCases, port: 3, queue: 12, probe: "dc1-tap3")
        #expect(all.map(\.name) == ["port", "queue", "probe"])
        #expect(all.map(\.value) == ["3", "12", "dc1-tap3"])
        // Only the chosen ones, in the order given.
        let some = MessageContract.headers([.probe, .port], port: 65535, queue: 0, probe: "p")
        #expect(some.map(\.name) == ["probe", "port"])
        #expect(some.map(\.value) == ["p", "65535"])
        #expect(MessageContract.headers([], port: 0, queue: 0, probe: "p").isEmpty)
    }

    /// `time_ns`: the capture time in ns since the epoch, 8 bytes big-endian (binary).
    @Test func timeNanosIsEightBigEndianBytes() {
        let nanos: UInt64 = 1_765_000_000_123_456_789  // 0x187E_8A26_13EC_4D15
        let bytes = withUnsafeBytes(of: MessageContract.timeNanosValue(nanos)) { Array($0) }
        #expect(bytes == [0x18, 0x7E, 0x8A, 0x26, 0x13, 0xEC, 0x4D, 0x15])
        #expect(MessageContract.nanos(timeHeader: bytes) == nanos)
        #expect(MessageContract.nanos(timeHeader: Array(bytes.prefix(7))) == nil)
        #expect(MessageContract.nanos(timeHeader: Array("1765000000123456789".utf8)) == nil)
        // The key is its microseconds.
        #expect(MessageContract.key(nanos: nanos) == MessageContract.key(micros: 1_765_000_000_123_456))
    }

    @Test func originalLengthRoundTripsAsAsciiDecimal() {
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: MessageContract.originalLengthCapacity)
        defer { buffer.deallocate() }
        for length in [1, 9, 10, 1514, 65_536, 262_144, Int.max] {
            let count = MessageContract.writeOriginalLength(length, into: buffer)
            #expect(count <= MessageContract.originalLengthCapacity)
            let text = String(decoding: UnsafeBufferPointer(start: buffer, count: count), as: UTF8.self)
            #expect(text == "\(length)")
            #expect(MessageContract.originalLength(header: text, valueLength: 1) == length)
        }
        // Only a cut frame carries it; read back, its absence means the value is whole.
        #expect(MessageContract.carriesOriginalLength(valueLength: 128, originalLength: 1514))
        #expect(!MessageContract.carriesOriginalLength(valueLength: 1514, originalLength: 1514))
        #expect(MessageContract.originalLength(header: nil, valueLength: 60) == 60)
        #expect(MessageContract.originalLength(header: "40", valueLength: 60) == 60)
        #expect(MessageContract.originalLength(header: "not a number", valueLength: 60) == 60)
    }

    @Test func aTopicTemplateGivesEachPortItsTopic() {
        #expect(MessageContract.portPlaceholder == "{port}")
        #expect(MessageContract.topic("pcap", port: 3) == "pcap")
        #expect(MessageContract.topic("pcap-{port}", port: 0) == "pcap-0")
        #expect(MessageContract.topic("{port}.pcap.{port}", port: 12) == "12.pcap.12")
        #expect(MessageContract.topic("pcap-{por}t", port: 1) == "pcap-{por}t")
    }
}
