import CRdKafka
import Glibc

/// The argument vector of `rd_kafka_produceva` for messages that carry headers
/// or their own record timestamp (`--record-time capture`; the message
/// contract, `MessageContract`): a transmit worker's fixed headers
/// (`--headers`: `port`, `queue`, `probe`, their ASCII values built once), the
/// capture time in ns when asked (`time_ns`, 8 bytes in a slot of its own) and,
/// on a frame cut by the snap length, `orig_len`. Built once per worker: per
/// message only the value, key, opaque, partition, `time_ns` and the `orig_len`
/// digits change, and the timestamp (per message, or once per burst), so nothing is allocated here per
/// message (librdkafka copies the message and its headers, as it copies every value).
/// `rd_kafka_produce_batch` cannot carry headers nor a timestamp per message
/// (librdkafka 2.0.2 creates its messages without headers, all stamped with one
/// clock read): these messages are produced one call each. What makes
/// that call cost less is given to it: the partition, when the worker knows it
/// (no partitioner call), and the timestamp read once per burst, as a batch
/// reads it (no clock read per message; librdkafka still reads its monotonic
/// clock twice per call).
package final class ProducevaArguments: @unchecked Sendable {
    @usableFromInline let fields: UnsafeMutablePointer<rd_kafka_vu_t>
    /// Topic, flags, value, key, opaque, timestamp, partition, then the fixed headers.
    @usableFromInline let fixedCount: Int
    /// `orig_len`'s digits (ASCII, no terminator).
    @usableFromInline let digits: UnsafeMutablePointer<UInt8>
    /// `time_ns`'s value (big-endian), when the messages carry it: the last fixed field.
    @usableFromInline let timeNanos: UnsafeMutablePointer<UInt64>?
    /// The names and values the fields point to, owned here.
    private let strings: [UnsafeMutablePointer<CChar>]

    /// The vector for messages carrying `headers` (names and values, in order)
    /// and, with `timeNanos`, `time_ns` after them.
    package init(headers: [(name: String, value: String)], timeNanos: Bool = false) {
        fixedCount = 7 + headers.count + (timeNanos ? 1 : 0)
        fields = .allocate(capacity: fixedCount + 1)
        fields.initialize(repeating: rd_kafka_vu_t(), count: fixedCount + 1)
        digits = .allocate(capacity: MessageContract.originalLengthCapacity)
        digits.initialize(repeating: 0, count: MessageContract.originalLengthCapacity)
        var strings: [UnsafeMutablePointer<CChar>] = []
        func keep(_ text: String) -> UnsafeMutablePointer<CChar> {
            let copy = strdup(text)!
            strings.append(copy)
            return copy
        }
        fields[0].vtype = RD_KAFKA_VTYPE_RKT
        fields[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS
        fields[1].u.i = RD_KAFKA_MSG_F_COPY
        fields[2].vtype = RD_KAFKA_VTYPE_VALUE
        fields[3].vtype = RD_KAFKA_VTYPE_KEY
        fields[4].vtype = RD_KAFKA_VTYPE_OPAQUE
        fields[5].vtype = RD_KAFKA_VTYPE_TIMESTAMP
        fields[6].vtype = RD_KAFKA_VTYPE_PARTITION
        for (index, header) in headers.enumerated() {
            fields[7 + index].vtype = RD_KAFKA_VTYPE_HEADER
            fields[7 + index].u.header = .init(
                name: keep(header.name),
                val: UnsafeRawPointer(keep(header.value)),
                size: header.value.utf8.count
            )
        }
        if timeNanos {
            let slot = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
            slot.initialize(to: 0)
            self.timeNanos = slot
            fields[fixedCount - 1].vtype = RD_KAFKA_VTYPE_HEADER
            fields[fixedCount - 1].u.header = .init(
                name: keep(MessageContract.Header.timeNanos.name),
                val: UnsafeRawPointer(slot),
                size: MessageContract.timeNanosLength
            )
        } else {
            self.timeNanos = nil
        }
        fields[fixedCount].vtype = RD_KAFKA_VTYPE_HEADER
        fields[fixedCount].u.header = .init(
            name: keep(MessageContract.originalLengthName),
            val: UnsafeRawPointer(digits),
            size: 0
        )
        self.strings = strings
    }

    deinit {
        for string in strings { free(string) }
        fields.deallocate()
        digits.deallocate()
        timeNanos?.deallocate()
    }

    /// Fills the per-message fields; returns how many fields to pass.
    @inlinable func prepare(
        topic: OpaquePointer,
        payload: UnsafeRawPointer,
        length: Int,
        key: UnsafeRawPointer,
        hint: UInt,
        partition: Int32,
        timestampMillis: Int64,
        originalLength: Int,
        captureNanos: UInt64
    ) -> Int {
        fields[0].u.rkt = topic
        fields[2].u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: payload), size: length)
        fields[3].u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: key), size: MessageContract.keyLength)
        fields[4].u.ptr = UnsafeMutableRawPointer(bitPattern: hint)
        fields[5].u.i64 = timestampMillis
        fields[6].u.i32 = partition
        timeNanos?.pointee = MessageContract.timeNanosValue(captureNanos)
        guard MessageContract.carriesOriginalLength(valueLength: length, originalLength: originalLength) else {
            return fixedCount
        }
        fields[fixedCount].u.header.size = MessageContract.writeOriginalLength(originalLength, into: digits)
        return fixedCount + 1
    }
}

extension ProducerEndpoint {
    /// Produces one message (copied) with `arguments`' headers, plus `orig_len`
    /// when `originalLength` exceeds `length`, keyed by `key` (the contract's), to
    /// `partition` (-1: placed by the partitioner on `hint`), stamped
    /// `timestampMillis` (epoch ms; 0: librdkafka reads its clock), with
    /// `captureNanos` as `time_ns` when `arguments` carry it. Returns why it
    /// was refused, or nil.
    @inlinable package func produce(
        _ payload: UnsafeRawPointer,
        length: Int,
        originalLength: Int,
        key: UnsafeRawPointer,
        hint: UInt,
        partition: Int32,
        timestampMillis: Int64,
        captureNanos: UInt64 = 0,
        arguments: ProducevaArguments
    ) -> ProduceRefusal? {
        let count = arguments.prepare(
            topic: topic,
            payload: payload,
            length: length,
            key: key,
            hint: hint,
            partition: partition,
            timestampMillis: timestampMillis,
            originalLength: originalLength,
            captureNanos: captureNanos
        )
        guard let error = rd_kafka_produceva(kafka, arguments.fields, count) else { return nil }
        let code = rd_kafka_error_code(error)
        rd_kafka_error_destroy(error)
        return ProduceRefusal(code)
    }
}
