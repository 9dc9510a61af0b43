/// The message contract (Documentation/MessageFormat.md), spelled once for the
/// transmit workers that write it and for everything that reads it back
/// (`consume`, the `--since` seek, the delivery reports' latency):
///
/// - key: the packet's capture time, epoch microseconds, 8 bytes big-endian;
/// - value: the frame as captured, cut to the snap length;
/// - header `orig_len`: a cut frame's original length, ASCII decimal, only on a cut frame;
/// - headers `port`, `queue`, `probe` (`--headers`): ASCII values, in that order;
/// - record timestamp (CreateTime, epoch ms): with `--record-time capture`, the
///   capture time ÷ 1000 (`recordMillis`); with `send`, when librdkafka took it;
/// - topic: `--topic`, every `{port}` in it replaced by the port's id.
///
/// What the per-packet path calls is inlined and writes into fixed buffers:
/// nothing here allocates per message.
package enum MessageContract {
    // MARK: The key

    /// The key as librdkafka reads it: the capture time's 8 bytes in network
    /// order, held in one word (a fixed slot per message, never allocated).
    package typealias Key = UInt64

    /// The key's length in bytes.
    @inlinable package static var keyLength: Int { MemoryLayout<Key>.size }

    /// The key of a packet captured at `micros` (epoch microseconds).
    @inlinable package static func key(micros: UInt64) -> Key { micros.bigEndian }

    /// The key of a packet captured at `nanos` (epoch nanoseconds): its microseconds.
    @inlinable package static func key(nanos: UInt64) -> Key { key(micros: nanos / 1000) }

    /// The key of a packet captured at `micros`, as bytes.
    package static func keyBytes(micros: UInt64) -> [UInt8] {
        withUnsafeBytes(of: key(micros: micros)) { Array($0) }
    }

    /// The record timestamp (epoch ms) of a packet captured at `micros` under
    /// `--record-time capture`: the key's time, truncated to the millisecond,
    /// so that a reader can tell a capture-timed record by `recordMillis(key) ==
    /// timestamp`. Never 0 (librdkafka reads its own clock for 0): a capture
    /// time in the epoch's first millisecond is stamped 1.
    @inlinable package static func recordMillis(micros: UInt64) -> Int64 {
        max(Int64(truncatingIfNeeded: micros / 1000), 1)
    }

    /// The record timestamp of a packet captured at `nanos` (epoch ns): the key's ms.
    @inlinable package static func recordMillis(nanos: UInt64) -> Int64 { recordMillis(micros: nanos / 1000) }

    /// The capture time in the `length` bytes at `key`, or nil when they are
    /// not a key fastcapa wrote (not 8 bytes).
    @inlinable package static func micros(key: UnsafeRawPointer?, length: Int) -> UInt64? {
        guard length == keyLength, let key else { return nil }
        return UInt64(bigEndian: key.loadUnaligned(as: Key.self))
    }

    /// The capture time in `key`, or nil when it is not a key fastcapa wrote.
    package static func micros(key: [UInt8]) -> UInt64? {
        key.withUnsafeBytes { micros(key: $0.baseAddress, length: $0.count) }
    }

    /// Why a reader refuses a message whose key is not 8 bytes: the topic is not
    /// one fastcapa wrote.
    package static func keyRefusal(partition: Int32, offset: Int64, topic: String, length: Int) -> String {
        "the message at partition \(partition) offset \(offset) of topic '\(topic)' has a key of \(length) bytes, "
            + "not \(keyLength): this is not a topic fastcapa wrote (its keys are capture times)"
    }

    // MARK: The headers

    /// A header `--headers` adds to every message; its name is its raw value.
    /// `port`, `queue` and `probe` have ASCII values fixed per transmit worker,
    /// in the order given; `time_ns` a binary value of its own per message,
    /// after them. Declared in the order a message carries them by default.
    package enum Header: String, Sendable, CaseIterable {
        /// The DPDK port id, decimal.
        case port
        /// The receive queue, decimal.
        case queue
        /// `--probe-id`, or the host name.
        case probe
        /// The capture time in nanoseconds since the epoch: 8 bytes, big-endian (binary, not ASCII).
        case timeNanos = "time_ns"

        package var name: String { rawValue }
    }

    /// The fixed headers of the transmit worker serving `queue` of `port`:
    /// the `chosen` ones with a value fixed per worker, in their order, with
    /// their values (`time_ns`, whose value is per message, is not one).
    package static func headers(
        _ chosen: [Header],
        port: UInt16,
        queue: Int,
        probe: String
    ) -> [(name: String, value: String)] {
        chosen.compactMap { header in
            switch header {
            case .port: (header.name, "\(port)")
            case .queue: (header.name, "\(queue)")
            case .probe: (header.name, probe)
            case .timeNanos: nil
            }
        }
    }

    /// `time_ns`'s value for a capture at `nanos` (epoch ns), as it lies in a
    /// message: 8 bytes, big-endian.
    @inlinable package static func timeNanosValue(_ nanos: UInt64) -> UInt64 { nanos.bigEndian }

    /// The length of `time_ns`'s value.
    @inlinable package static var timeNanosLength: Int { MemoryLayout<UInt64>.size }

    /// The capture time in a `time_ns` value, or nil when it is not 8 bytes.
    package static func nanos(timeHeader value: [UInt8]) -> UInt64? {
        guard value.count == timeNanosLength else { return nil }
        return value.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The header that gives a cut frame's original length.
    package static let originalLengthName = "orig_len"

    /// Room for `orig_len`'s digits: any `Int`.
    @inlinable package static var originalLengthCapacity: Int { 20 }

    /// Whether a message carries `orig_len`: only a frame the snap length cut,
    /// whose original length exceeds the value's.
    @inlinable package static func carriesOriginalLength(valueLength: Int, originalLength: Int) -> Bool {
        originalLength > valueLength
    }

    /// Writes `orig_len`'s value for `originalLength` (its decimal digits, ASCII,
    /// no terminator) at `buffer`, which has room for `originalLengthCapacity`;
    /// returns how many bytes.
    @inlinable package static func writeOriginalLength(
        _ originalLength: Int,
        into buffer: UnsafeMutablePointer<UInt8>
    ) -> Int {
        var count = 1
        var rest = originalLength / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        var remaining = originalLength
        for index in stride(from: count - 1, through: 0, by: -1) {
            buffer[index] = UInt8(ascii: "0") + UInt8(remaining % 10)
            remaining /= 10
        }
        return count
    }

    /// A message's original length read back: its `orig_len` header, or the
    /// value's length when the header is absent (a whole frame) or smaller.
    package static func originalLength(header: String?, valueLength: Int) -> Int {
        max(header.flatMap { Int($0) } ?? 0, valueLength)
    }

    // MARK: The topic

    /// What `--topic` may hold to give each port its own topic (`pcap-{port}`).
    package static let portPlaceholder = "{port}"

    /// The topic `port`'s packets go to: `template` with every `{port}`
    /// replaced by the port's id.
    package static func topic(_ template: String, port: UInt16) -> String {
        var result = ""
        var rest = Substring(template)
        while let range = rest.firstRange(of: portPlaceholder) {
            result += rest[..<range.lowerBound] + "\(port)"
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
