import CFastcapaShared
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
        digits = ProducevaArguments.makeDigits()
        var strings: [UnsafeMutablePointer<CChar>] = []
        func keep(_ text: String) -> UnsafeMutablePointer<CChar> { ProducevaArguments.keep(text, in: &strings) }
        ProducevaArguments.setMessageFields(fields, flags: RD_KAFKA_MSG_F_COPY)
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

    /// Room for a header's decimal digits (`orig_len`, `fastcapa.count`).
    static func makeDigits() -> UnsafeMutablePointer<UInt8> {
        let digits = UnsafeMutablePointer<UInt8>.allocate(capacity: MessageContract.originalLengthCapacity)
        digits.initialize(repeating: 0, count: MessageContract.originalLengthCapacity)
        return digits
    }

    /// A C copy of `text`, added to `strings` (its owner frees them).
    static func keep(_ text: String, in strings: inout [UnsafeMutablePointer<CChar>]) -> UnsafeMutablePointer<CChar> {
        let copy = strdup(text)!
        strings.append(copy)
        return copy
    }

    /// The seven fields every message sets (topic, flags, value, key, opaque,
    /// timestamp, partition), in that order, with `flags` as its message flags.
    static func setMessageFields(_ fields: UnsafeMutablePointer<rd_kafka_vu_t>, flags: Int32) {
        let types = [
            RD_KAFKA_VTYPE_RKT, RD_KAFKA_VTYPE_MSGFLAGS, RD_KAFKA_VTYPE_VALUE, RD_KAFKA_VTYPE_KEY,
            RD_KAFKA_VTYPE_OPAQUE, RD_KAFKA_VTYPE_TIMESTAMP, RD_KAFKA_VTYPE_PARTITION,
        ]
        for (index, type) in types.enumerated() { fields[index].vtype = type }
        fields[1].u.i = flags
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

/// The argument vector of `rd_kafka_produceva` for bundles (`MessageContract.Bundle`):
/// the value sent from its pool buffer without a copy (message flags 0: neither
/// COPY nor FREE), the bundle's descriptor as the opaque, the format marker,
/// the packet count (its digits rewritten per bundle) and the worker's fixed
/// headers (`--headers`: `port`, `queue`, `probe`, once per bundle). Built once
/// per worker; librdkafka copies the key and the headers.
package final class BundleArguments: @unchecked Sendable {
    @usableFromInline let fields: UnsafeMutablePointer<rd_kafka_vu_t>
    @usableFromInline let count: Int
    /// The count header's digits (ASCII, no terminator).
    @usableFromInline let digits: UnsafeMutablePointer<UInt8>
    private let strings: [UnsafeMutablePointer<CChar>]

    /// Index of the count header among the fields.
    @usableFromInline static var countField: Int { 8 }

    package init(headers: [(name: String, value: String)]) {
        count = 9 + headers.count
        fields = .allocate(capacity: count)
        fields.initialize(repeating: rd_kafka_vu_t(), count: count)
        digits = ProducevaArguments.makeDigits()
        var strings: [UnsafeMutablePointer<CChar>] = []
        func keep(_ text: String) -> UnsafeMutablePointer<CChar> { ProducevaArguments.keep(text, in: &strings) }
        // Sent from its pool buffer: neither copied nor freed by librdkafka.
        ProducevaArguments.setMessageFields(fields, flags: 0)
        let marker = MessageContract.Bundle.format
        fields[7].vtype = RD_KAFKA_VTYPE_HEADER
        fields[7].u.header = .init(
            name: keep(MessageContract.Bundle.formatHeader),
            val: UnsafeRawPointer(keep(marker)),
            size: marker.utf8.count
        )
        fields[Self.countField].vtype = RD_KAFKA_VTYPE_HEADER
        fields[Self.countField].u.header = .init(
            name: keep(MessageContract.Bundle.countHeader),
            val: UnsafeRawPointer(digits),
            size: 0
        )
        for (index, header) in headers.enumerated() {
            fields[9 + index].vtype = RD_KAFKA_VTYPE_HEADER
            fields[9 + index].u.header = .init(
                name: keep(header.name),
                val: UnsafeRawPointer(keep(header.value)),
                size: header.value.utf8.count
            )
        }
        self.strings = strings
    }

    deinit {
        for string in strings { free(string) }
        fields.deallocate()
        digits.deallocate()
    }
}

extension ProducerEndpoint {
    /// Produces a bundle: `length` bytes of `value` (its pool buffer, not copied:
    /// it must stay untouched until the bundle's final report), keyed by `key`,
    /// with `bundle` (its descriptor, packets and hint set) as the opaque;
    /// `partition` -1 lets the partitioner place it by the descriptor's hint;
    /// stamped `timestampMillis` (0: librdkafka reads its clock). Counts the
    /// bundle's packets as queued before librdkafka can report them. Returns why
    /// it was refused, or nil.
    @inlinable package func produce(
        bundle: UnsafeMutablePointer<fastcapa_bundle>,
        value: UnsafeRawPointer,
        length: Int,
        key: UnsafeRawPointer,
        partition: Int32,
        timestampMillis: Int64,
        arguments: BundleArguments
    ) -> ProduceRefusal? {
        let fields = arguments.fields
        fields[0].u.rkt = topic
        fields[2].u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: value), size: length)
        fields[3].u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: key), size: MessageContract.keyLength)
        fields[4].u.ptr = UnsafeMutableRawPointer(bundle)
        fields[5].u.i64 = timestampMillis
        fields[6].u.i32 = partition
        fields[BundleArguments.countField].u.header.size = MessageContract.writeOriginalLength(
            Int(bundle.pointee.packets),
            into: arguments.digits
        )
        let packets = Int64(bundle.pointee.packets)
        fastcapa_packets_add(&context.pointee.queued_packets, packets)
        guard let error = rd_kafka_produceva(kafka, fields, arguments.count) else { return nil }
        fastcapa_packets_add(&context.pointee.queued_packets, -packets)
        let code = rd_kafka_error_code(error)
        rd_kafka_error_destroy(error)
        return ProduceRefusal(code)
    }
}
