import Glibc

/// One line per packet for `fastcapa consume --format text`, as
/// `TZ=UTC tcpdump -tttt -nn -S -r` prints it for the common protocols: the time,
/// then ARP, IPv4 or IPv6 (802.1Q and 802.1ad tags skipped, as tcpdump does
/// without `-e`) with TCP (flags, absolute seq and ack, window, length), UDP,
/// ICMP or ICMPv6. tcpdump's TCP options and application decoders (DNS, HTTP...)
/// are left out; anything else is a short hex summary.
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
        "\(time(micros: micros)) \(describe(frame, originalLength: originalLength))"
    }

    /// What the frame holds, as tcpdump says it; the hex summary when it cannot.
    package static func describe(_ frame: [UInt8], originalLength: Int) -> String {
        let bytes = Bytes(frame)
        var offset = 12
        guard var type = bytes.u16(offset) else { return hexSummary(frame, originalLength: originalLength) }
        // VLAN tags (802.1Q, 802.1ad, the old QinQ type): skipped.
        while type == 0x8100 || type == 0x88A8 || type == 0x9100, let inner = bytes.u16(offset + 4) {
            offset += 4
            type = inner
        }
        let text: String? =
            switch type {
            case 0x0800: ipv4(bytes, at: offset + 2)
            case 0x86DD: ipv6(bytes, at: offset + 2)
            case 0x0806: arp(bytes, at: offset + 2, length: originalLength - offset - 2)
            default: nil
            }
        return text ?? hexSummary(frame, originalLength: originalLength)
    }

    /// A short hex summary: the length and the first 16 bytes.
    static func hexSummary(_ frame: [UInt8], originalLength: Int) -> String {
        let head = frame.prefix(16).map(hex).joined(separator: " ")
        let captured = originalLength > frame.count ? " (captured \(frame.count))" : ""
        return "length \(originalLength)\(captured): \(head)\(frame.count > 16 ? " ..." : "")"
    }

    static func hex(_ byte: UInt8) -> String {
        let text = String(byte, radix: 16)
        return byte < 16 ? "0" + text : text
    }

    /// Bounds-checked big-endian reads.
    struct Bytes {
        let data: [UInt8]
        init(_ data: [UInt8]) { self.data = data }
        func u8(_ at: Int) -> UInt8? { at >= 0 && at < data.count ? data[at] : nil }
        func u16(_ at: Int) -> UInt16? {
            guard at >= 0 && at + 2 <= data.count else { return nil }
            return UInt16(data[at]) << 8 | UInt16(data[at + 1])
        }
        func u32(_ at: Int) -> UInt32? {
            guard let high = u16(at), let low = u16(at + 2) else { return nil }
            return UInt32(high) << 16 | UInt32(low)
        }
        func slice(_ at: Int, _ count: Int) -> [UInt8]? {
            at >= 0 && at + count <= data.count ? Array(data[at..<at + count]) : nil
        }
    }

    static func ipv4Address(_ bytes: [UInt8]) -> String { bytes.map(String.init).joined(separator: ".") }

    static func ipv6Address(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        bytes.withUnsafeBytes { _ = inet_ntop(AF_INET6, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func arp(_ bytes: Bytes, at: Int, length: Int) -> String? {
        guard bytes.u16(at) == 1, bytes.u16(at + 2) == 0x0800, bytes.u8(at + 4) == 6, bytes.u8(at + 5) == 4,
            let operation = bytes.u16(at + 6), let senderMAC = bytes.slice(at + 8, 6),
            let sender = bytes.slice(at + 14, 4), let target = bytes.slice(at + 24, 4)
        else { return nil }
        switch operation {
        case 1:
            return "ARP, Request who-has \(ipv4Address(target)) tell \(ipv4Address(sender)), length \(length)"
        case 2:
            let mac = senderMAC.map(hex).joined(separator: ":")
            return "ARP, Reply \(ipv4Address(sender)) is-at \(mac), length \(length)"
        default: return nil
        }
    }

    static func ipv4(_ bytes: Bytes, at: Int) -> String? {
        guard let first = bytes.u8(at), first >> 4 == 4, let total = bytes.u16(at + 2),
            let fragment = bytes.u16(at + 6), let proto = bytes.u8(at + 9),
            let source = bytes.slice(at + 12, 4), let destination = bytes.slice(at + 16, 4)
        else { return nil }
        let headerLength = Int(first & 0x0F) * 4
        // A fragment after the first carries no transport header.
        guard headerLength >= 20, fragment & 0x1FFF == 0 else { return nil }
        let payload = Int(total) - headerLength
        return transport(
            bytes,
            at: at + headerLength,
            proto: proto,
            payload: payload,
            family: "IP",
            source: ipv4Address(source),
            destination: ipv4Address(destination)
        )
    }

    static func ipv6(_ bytes: Bytes, at: Int) -> String? {
        guard let first = bytes.u8(at), first >> 4 == 6, let length = bytes.u16(at + 4),
            let next = bytes.u8(at + 6), let source = bytes.slice(at + 8, 16),
            let destination = bytes.slice(at + 24, 16)
        else { return nil }
        return transport(
            bytes,
            at: at + 40,
            proto: next,
            payload: Int(length),
            family: "IP6",
            source: ipv6Address(source),
            destination: ipv6Address(destination)
        )
    }

    static func transport(
        _ bytes: Bytes,
        at: Int,
        proto: UInt8,
        payload: Int,
        family: String,
        source: String,
        destination: String
    ) -> String? {
        switch proto {
        case 6:
            guard let sourcePort = bytes.u16(at), let destinationPort = bytes.u16(at + 2),
                let sequence = bytes.u32(at + 4), let acknowledgement = bytes.u32(at + 8),
                let offsetByte = bytes.u8(at + 12), let flags = bytes.u8(at + 13), let window = bytes.u16(at + 14)
            else { return nil }
            let dataLength = payload - Int(offsetByte >> 4) * 4
            var text =
                "\(family) \(source).\(sourcePort) > \(destination).\(destinationPort): Flags [\(tcpFlags(flags))]"
            if dataLength > 0 {
                text += ", seq \(sequence):\(UInt64(sequence) + UInt64(dataLength))"
            } else if flags & 0x17 != 0x10 {
                // tcpdump shows seq on an empty segment unless it is a pure ACK.
                text += ", seq \(sequence)"
            }
            if flags & 0x10 != 0 { text += ", ack \(acknowledgement)" }
            text += ", win \(window)"
            if flags & 0x20 != 0, let urgent = bytes.u16(at + 18) { text += ", urg \(urgent)" }
            return text + ", length \(max(dataLength, 0))"
        case 17:
            guard let sourcePort = bytes.u16(at), let destinationPort = bytes.u16(at + 2),
                let length = bytes.u16(at + 4)
            else { return nil }
            return
                "\(family) \(source).\(sourcePort) > \(destination).\(destinationPort): UDP, length \(max(Int(length) - 8, 0))"
        case 1 where family == "IP":
            guard let body = icmp(bytes, at: at, length: payload) else { return nil }
            return "IP \(source) > \(destination): ICMP \(body), length \(payload)"
        case 58 where family == "IP6":
            guard let body = icmp6(bytes, at: at) else { return nil }
            return "IP6 \(source) > \(destination): ICMP6, \(body), length \(payload)"
        default:
            return nil
        }
    }

    /// tcpdump's flag letters, in its order; "none" when none is set.
    static func tcpFlags(_ flags: UInt8) -> String {
        let letters: [(UInt8, Character)] = [
            (0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."), (0x20, "U"), (0x40, "E"), (0x80, "W"),
        ]
        let text = String(letters.filter { flags & $0.0 != 0 }.map(\.1))
        return text.isEmpty ? "none" : text
    }

    static func icmp(_ bytes: Bytes, at: Int, length: Int) -> String? {
        guard let type = bytes.u8(at), let code = bytes.u8(at + 1) else { return nil }
        switch (type, code) {
        case (8, _), (0, _):
            guard let id = bytes.u16(at + 4), let sequence = bytes.u16(at + 6) else { return nil }
            return "echo \(type == 8 ? "request" : "reply"), id \(id), seq \(sequence)"
        case (3, 3):
            // Port unreachable: the quoted datagram's destination, protocol and port.
            let inner = at + 8
            guard let first = bytes.u8(inner), let proto = bytes.u8(inner + 9),
                let destination = bytes.slice(inner + 16, 4),
                let port = bytes.u16(inner + Int(first & 0x0F) * 4 + 2), proto == 6 || proto == 17
            else { return nil }
            return "\(ipv4Address(destination)) \(proto == 6 ? "tcp" : "udp") port \(port) unreachable"
        case (11, 0):
            return "time exceeded in-transit"
        default:
            return nil
        }
    }

    static func icmp6(_ bytes: Bytes, at: Int) -> String? {
        guard let type = bytes.u8(at) else { return nil }
        switch type {
        case 128, 129:
            guard let id = bytes.u16(at + 4), let sequence = bytes.u16(at + 6) else { return nil }
            return "echo \(type == 128 ? "request" : "reply"), id \(id), seq \(sequence)"
        case 135:
            guard let target = bytes.slice(at + 8, 16) else { return nil }
            return "neighbor solicitation, who has \(ipv6Address(target))"
        case 136:
            guard let target = bytes.slice(at + 8, 16) else { return nil }
            return "neighbor advertisement, tgt is \(ipv6Address(target))"
        default:
            return nil
        }
    }
}
