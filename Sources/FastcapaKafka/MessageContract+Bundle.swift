/// Bundles (`pcap-records-v1`, Documentation/MessageFormat.md, "Bundles"): many
/// packets of one port and queue in one message, in receive order.
///
/// - value: the packets as consecutive pcap records, exactly as in a
///   little-endian, microsecond pcap file: a 16-byte header (seconds,
///   microseconds, captured length, original length, each a little-endian
///   `UInt32`), then the captured bytes. A pcap global header followed by the
///   value is a pcap file;
/// - key: the first packet's capture time, as for a single packet;
/// - header `fastcapa.format`: `pcap-records-v1` (what tells a bundle from a single packet);
/// - header `fastcapa.count`: the packet count, ASCII decimal;
/// - headers `port`, `queue`, `probe` (`--headers`): once per bundle, as on a single packet.
///
/// The encoder writes into a buffer its caller owns (no allocation: usable on an
/// lcore); the decoder, for readers, copies each packet out.
extension MessageContract {
    package enum Bundle {
        /// The header that marks a bundle, and its value.
        package static let formatHeader = "fastcapa.format"
        package static let format = "pcap-records-v1"
        /// The header that gives the packet count (ASCII decimal; `writeOriginalLength` writes such digits).
        package static let countHeader = "fastcapa.count"

        /// The length of a record's header: seconds, microseconds, captured length, original length.
        @inlinable package static var recordHeaderLength: Int { 16 }

        /// The bytes one packet of `length` captured bytes takes in a value.
        @inlinable package static func recordLength(_ length: Int) -> Int { recordHeaderLength + length }

        /// Appends a packet captured at `micros` (epoch µs), `length` bytes at
        /// `frame` of an `originalLength`-byte frame (the larger of the two is
        /// written), as one record at `used` in `buffer`, which holds `capacity`
        /// bytes; advances `used`. Returns false, writing nothing, when the record
        /// does not fit.
        @inlinable @inline(__always) package static func append(
            micros: UInt64,
            originalLength: Int,
            frame: UnsafeRawPointer?,
            length: Int,
            into buffer: UnsafeMutableRawPointer,
            capacity: Int,
            used: inout Int
        ) -> Bool {
            guard length >= 0, length <= UInt32.max, capacity - used >= recordLength(length) else { return false }
            let record = buffer + used
            let seconds = UInt32(truncatingIfNeeded: micros / 1_000_000)
            let fraction = UInt32(truncatingIfNeeded: micros % 1_000_000)
            let original = UInt32(clamping: max(originalLength, length))
            record.storeBytes(of: seconds.littleEndian, toByteOffset: 0, as: UInt32.self)
            record.storeBytes(of: fraction.littleEndian, toByteOffset: 4, as: UInt32.self)
            record.storeBytes(of: UInt32(truncatingIfNeeded: length).littleEndian, toByteOffset: 8, as: UInt32.self)
            record.storeBytes(of: original.littleEndian, toByteOffset: 12, as: UInt32.self)
            if length > 0, let frame {
                (record + recordHeaderLength).copyMemory(from: frame, byteCount: length)
            }
            used += recordLength(length)
            return true
        }

        /// One packet read back from a bundle.
        package struct Packet: Equatable, Sendable {
            /// Its capture time, epoch µs.
            package var micros: UInt64
            /// The frame's length on the wire (at least the captured bytes').
            package var originalLength: Int
            /// The bytes captured.
            package var frame: [UInt8]

            package init(micros: UInt64, originalLength: Int, frame: [UInt8]) {
                self.micros = micros
                self.originalLength = max(originalLength, frame.count)
                self.frame = frame
            }
        }

        /// Why a reader refuses a message marked as a bundle.
        package struct Refusal: Error, CustomStringConvertible, Equatable {
            package var description: String
        }

        /// Whether a message whose `fastcapa.format` header holds `marker` (nil:
        /// none) is a bundle; throws for a marker of a format this reader does not know.
        package static func isBundle(
            marker: [UInt8]?,
            partition: Int32,
            offset: Int64,
            topic: String
        ) throws(Refusal) -> Bool {
            guard let marker else { return false }
            let text = String(decoding: marker, as: UTF8.self)
            guard text == format else {
                throw Refusal(
                    description:
                        "the message at partition \(partition) offset \(offset) of topic '\(topic)' is in format '\(text)' (its \(formatHeader) header); this fastcapa reads \(format) only: read it with the fastcapa that wrote it, or a later one"
                )
            }
            return true
        }

        /// The value of a bundle: `packets` as records (tests, examples; the
        /// transmit side appends into its own buffers).
        package static func value(_ packets: [Packet]) -> [UInt8] {
            let capacity = packets.reduce(0) { $0 + recordLength($1.frame.count) }
            var bytes = [UInt8](repeating: 0, count: capacity)
            var used = 0
            bytes.withUnsafeMutableBytes { buffer in
                for packet in packets {
                    let appended = packet.frame.withUnsafeBytes { frame in
                        append(
                            micros: packet.micros,
                            originalLength: packet.originalLength,
                            frame: frame.baseAddress,
                            length: frame.count,
                            into: buffer.baseAddress!,
                            capacity: capacity,
                            used: &used
                        )
                    }
                    precondition(appended, "a bundle's value is sized for its records")
                }
            }
            return bytes
        }

        /// The packets of a bundle's `value`, in order, checked against its
        /// `fastcapa.count` header (`count`, nil when absent). Refuses a value
        /// with no record, a record running past the value's end, a record whose
        /// captured length exceeds its original length or whose microseconds
        /// reach a second, and a count that is not the records'.
        package static func packets(
            in value: [UInt8],
            count: String?,
            partition: Int32,
            offset: Int64,
            topic: String
        ) throws(Refusal) -> [Packet] {
            func refuse(_ problem: String) -> Refusal {
                Refusal(
                    description:
                        "the bundle at partition \(partition) offset \(offset) of topic '\(topic)' is malformed: \(problem). It is not a \(format) value fastcapa wrote: read it with kcat to look at it"
                )
            }
            func word(_ at: Int) -> UInt32 {
                UInt32(value[at]) | UInt32(value[at + 1]) << 8 | UInt32(value[at + 2]) << 16
                    | UInt32(value[at + 3]) << 24
            }
            var packets: [Packet] = []
            var position = 0
            while position < value.count {
                let index = packets.count
                guard value.count - position >= recordHeaderLength else {
                    throw refuse(
                        "record \(index) at byte \(position) has \(value.count - position) bytes of its \(recordHeaderLength)-byte header"
                    )
                }
                let seconds = UInt64(word(position))
                let fraction = UInt64(word(position + 4))
                let captured = Int(word(position + 8))
                let original = Int(word(position + 12))
                guard fraction < 1_000_000 else {
                    throw refuse("record \(index) at byte \(position) has \(fraction) microseconds, not below 1000000")
                }
                guard captured <= original else {
                    throw refuse(
                        "record \(index) at byte \(position) has a captured length of \(captured), more than its original length \(original)"
                    )
                }
                let start = position + recordHeaderLength
                guard value.count - start >= captured else {
                    throw refuse(
                        "record \(index) at byte \(position) has a captured length of \(captured) but only \(value.count - start) bytes follow its header"
                    )
                }
                packets.append(
                    Packet(
                        micros: seconds * 1_000_000 + fraction,
                        originalLength: original,
                        frame: Array(value[start..<start + captured])
                    )
                )
                position = start + captured
            }
            guard !packets.isEmpty else { throw refuse("its value holds no record") }
            if let count {
                guard let stated = Int(count), stated >= 0 else {
                    throw refuse("its \(countHeader) header is '\(count)', not a packet count")
                }
                guard stated == packets.count else {
                    throw refuse(
                        "its \(countHeader) header says \(stated) packets, its value holds \(packets.count) records"
                    )
                }
            }
            return packets
        }
    }
}
