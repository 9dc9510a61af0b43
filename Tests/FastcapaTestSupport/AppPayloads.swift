/// Application bytes that decoders recognise, so tcpdump and tshark print
/// DNS names, NTP modes and HTTP lines rather than "unknown" or "malformed".
package enum AppPayloads {
    /// A DNS query (RD set) for `name`, type A (1) or AAAA (28).
    package static func dnsQuery(id: UInt16, name: String, type: UInt16 = 1) -> [UInt8] {
        bigEndian16(id) + [0x01, 0x00] + bigEndian16(1) + [0, 0, 0, 0, 0, 0] + question(name, type)
    }

    /// The reply to `dnsQuery` with one answer (4 or 16 address bytes).
    package static func dnsReply(
        id: UInt16,
        name: String,
        type: UInt16 = 1,
        address: [UInt8],
        ttl: UInt32 = 300
    ) -> [UInt8] {
        bigEndian16(id) + [0x81, 0x80] + bigEndian16(1) + bigEndian16(1) + [0, 0, 0, 0] + question(name, type)
            + [0xC0, 0x0C] + bigEndian16(type) + bigEndian16(1) + bigEndian32(ttl) + bigEndian16(UInt16(address.count))
            + address
    }

    static func question(_ name: String, _ type: UInt16) -> [UInt8] {
        name.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0] + bigEndian16(type)
            + bigEndian16(1)
    }

    /// An NTPv4 packet (48 bytes): mode 3 (client) or 4 (server).
    package static func ntp(server: Bool, transmit: UInt64) -> [UInt8] {
        var out: [UInt8] = [server ? 0x24 : 0x23, server ? 2 : 0, 6, 0xE9]
        out += [UInt8](repeating: 0, count: 8)  // root delay, dispersion
        out += server ? [192, 168, 1, 1] : [0, 0, 0, 0]  // reference id
        let stamp = bigEndian32(UInt32(transmit >> 32)) + bigEndian32(UInt32(transmit & 0xFFFF_FFFF))
        out += server ? stamp : [UInt8](repeating: 0, count: 8)  // reference time
        out += [UInt8](repeating: 0, count: 16)  // origin, receive
        out += stamp  // transmit
        return out
    }

    package static func httpRequest(path: String, host: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: fastcapa-synth/1.0\r\nAccept: */*\r\n\r\n".utf8)
    }

    /// A 200 response whose Content-Length matches a text body of `bodyLength` bytes.
    package static func httpResponse(bodyLength: Int) -> [UInt8] {
        let line = Array("<p>synthetic capture data for fastcapa tests</p>\n".utf8)
        let body = repeated(line, count: bodyLength)
        return Array("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: \(bodyLength)\r\n\r\n".utf8) + body
    }

    /// One TLS 1.2 application-data record holding `count` opaque bytes.
    package static func tlsRecord(_ bytes: [UInt8]) -> [UInt8] {
        [0x17, 0x03, 0x03] + bigEndian16(UInt16(bytes.count)) + bytes
    }

    /// SSH transport messages (RFC 4253) as exchanged in clear before NEWKEYS;
    /// random bytes stand in for keys and signatures. Without the key exchange
    /// tshark flags later random bytes as malformed SSH. The host key is
    /// ssh-rsa because tshark 4.0 warns on ed25519 and ecdsa signatures (it
    /// does not walk them), so the server is an OpenSSH that still signs with it.
    package enum SSH {
        package static func banner(server: Bool) -> [UInt8] {
            Array((server ? "SSH-2.0-OpenSSH_7.4\r\n" : "SSH-2.0-OpenSSH_9.2p1\r\n").utf8)
        }

        package static func kexInit(cookie: [UInt8]) -> [UInt8] {
            let lists = [
                "curve25519-sha256", "ssh-rsa", "chacha20-poly1305@openssh.com", "chacha20-poly1305@openssh.com",
                "hmac-sha2-256", "hmac-sha2-256", "none", "none", "", "",
            ]
            return packet([20] + cookie.prefix(16) + lists.flatMap { string(Array($0.utf8)) } + [0, 0, 0, 0, 0])
        }

        package static func ecdhInit(publicKey: [UInt8]) -> [UInt8] { packet([30] + string(publicKey)) }

        /// The server's ECDH reply followed by its NEWKEYS, as one write.
        /// `modulus` and `signature` are 256 bytes for a 2048-bit key.
        package static func ecdhReplyAndNewKeys(modulus: [UInt8], publicKey: [UInt8], signature: [UInt8]) -> [UInt8] {
            let rsa = string(Array("ssh-rsa".utf8))
            let key = rsa + string([1, 0, 1]) + string([0] + modulus)  // e = 65537, n (mpint, positive)
            return packet([31] + string(key) + string(publicKey) + string(rsa + string(signature))) + newKeys
        }

        package static let newKeys: [UInt8] = packet([21])

        /// A binary packet: length, padding length, payload, padding to a multiple of 8.
        static func packet(_ payload: [UInt8]) -> [UInt8] {
            var pad = 8 - (5 + payload.count) % 8
            if pad < 4 { pad += 8 }
            return bigEndian32(UInt32(1 + payload.count + pad)) + [UInt8(pad)] + payload
                + [UInt8](repeating: 0, count: pad)
        }

        static func string(_ bytes: [UInt8]) -> [UInt8] { bigEndian32(UInt32(bytes.count)) + bytes }
    }

    /// An RFC 3164 syslog line padded with text to `length` bytes.
    package static func syslog(length: Int, host: String) -> [UInt8] {
        let head = Array("<134>Jun  1 12:00:00 \(host) app[42]: ".utf8)
        let text = Array("disk usage report follows; ".utf8)
        return head + repeated(text, count: length - head.count)
    }

    /// `pattern` repeated and cut to `count` bytes.
    static func repeated(_ pattern: [UInt8], count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(max(0, count))
        while out.count < count { out += pattern.prefix(count - out.count) }
        return out
    }
}
