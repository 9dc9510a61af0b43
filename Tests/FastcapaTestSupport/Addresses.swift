import Foundation

/// Link and network addresses for building frames. Initialisers from strings
/// trap on malformed text: they are meant for literals in tests.
package struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    package var bytes: [UInt8]

    package init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        bytes = [b0, b1, b2, b3, b4, b5]
    }

    /// "02:00:5e:10:00:01" (colons or dashes).
    package init(_ text: String) {
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "-" }).map { UInt8($0, radix: 16) }
        precondition(parts.count == 6 && parts.allSatisfy { $0 != nil }, "bad MAC address \(text)")
        bytes = parts.map { $0! }
    }

    package static let broadcast = MACAddress(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
    package static let zero = MACAddress(0, 0, 0, 0, 0, 0)

    /// A locally administered unicast address (02:...) unique per `index`, so
    /// hosts in a corpus have stable, distinct MACs.
    package static func local(_ index: UInt32) -> MACAddress {
        MACAddress(
            0x02,
            0x00,
            UInt8(index >> 24 & 0xFF),
            UInt8(index >> 16 & 0xFF),
            UInt8(index >> 8 & 0xFF),
            UInt8(index & 0xFF)
        )
    }

    package var description: String { bytes.map { hex2($0) }.joined(separator: ":") }
}

package struct IPv4Address: Hashable, Sendable, CustomStringConvertible {
    package var bytes: [UInt8]

    package init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) { bytes = [a, b, c, d] }

    package init(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map { UInt8($0) }
        precondition(parts.count == 4 && parts.allSatisfy { $0 != nil }, "bad IPv4 address \(text)")
        bytes = parts.map { $0! }
    }

    package init(_ value: UInt32) {
        bytes = [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    package var description: String { bytes.map(String.init).joined(separator: ".") }
}

package struct IPv6Address: Hashable, Sendable, CustomStringConvertible {
    package var bytes: [UInt8]

    package init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "an IPv6 address is 16 bytes")
        self.bytes = bytes
    }

    /// Full or "::"-compressed text, e.g. "2001:db8::1" (no embedded IPv4).
    package init(_ text: String) {
        let halves = text.components(separatedBy: "::")
        precondition(halves.count <= 2, "bad IPv6 address \(text)")
        func groups(_ s: String) -> [UInt16] {
            s.isEmpty
                ? []
                : s.split(separator: ":", omittingEmptySubsequences: false).map {
                    guard let g = UInt16($0, radix: 16), $0.count <= 4 else {
                        preconditionFailure("bad IPv6 address \(text)")
                    }
                    return g
                }
        }
        let head = groups(halves[0])
        let tail = halves.count == 2 ? groups(halves[1]) : []
        let fill = 8 - head.count - tail.count
        precondition(halves.count == 2 ? fill >= 1 : fill == 0, "bad IPv6 address \(text)")
        let all = head + [UInt16](repeating: 0, count: fill) + tail
        bytes = all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// `prefix` with its last 64 bits replaced by `interfaceID`.
    package init(prefix: IPv6Address, interfaceID: UInt64) {
        bytes = Array(prefix.bytes[0..<8]) + (0..<8).map { UInt8(interfaceID >> (56 - 8 * UInt64($0)) & 0xFF) }
    }

    /// Lower-case, uncompressed groups without leading zeros (e.g. "2001:db8:0:0:0:0:0:1");
    /// enough for messages, not meant to match tcpdump's text.
    package var description: String {
        stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(
            separator: ":"
        )
    }
}

func hex2(_ byte: UInt8) -> String {
    let s = String(byte, radix: 16)
    return s.count == 1 ? "0" + s : s
}

/// Either family, so one call builds IPv4 or IPv6 traffic; string literals
/// with a colon are IPv6 ("2001:db8::1"), others IPv4 ("10.0.0.1").
package enum IPAddress: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    package init(_ text: String) { self = text.contains(":") ? .v6(IPv6Address(text)) : .v4(IPv4Address(text)) }
    package init(stringLiteral text: String) { self.init(text) }

    package var isIPv6: Bool { if case .v6 = self { true } else { false } }

    package var description: String {
        switch self {
        case .v4(let a): a.description
        case .v6(let a): a.description
        }
    }
}
