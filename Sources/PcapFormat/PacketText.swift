import Glibc

/// One line per packet for `fastcapa consume --format text`.
package enum PacketText {
    /// The capture time as `TZ=UTC tcpdump -tttt` prints it.
    package static func time(micros: UInt64) -> String {
        var seconds = time_t(micros / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let fraction = String(micros % 1_000_000)
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))."
            + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    static func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// The time, then what the frame holds.
    package static func line(micros: UInt64, frame: [UInt8], originalLength: Int) -> String {
        "\(time(micros: micros)) \(hexSummary(frame, originalLength: originalLength))"
    }

    /// A short hex summary: the length and the first 16 bytes.
    static func hexSummary(_ frame: [UInt8], originalLength: Int) -> String {
        let head = frame.prefix(16).map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined(separator: " ")
        let captured = originalLength > frame.count ? " (captured \(frame.count))" : ""
        return "length \(originalLength)\(captured): \(head)\(frame.count > 16 ? " ..." : "")"
    }
}
