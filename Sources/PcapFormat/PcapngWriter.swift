/// pcapng output: one section, one Ethernet interface with microsecond
/// timestamps, one Enhanced Packet Block per packet.
package enum Pcapng {
    package static func sectionHeader() -> [UInt8] {
        var body: [UInt8] = []
        append32(&body, 0x1A2B_3C4D)  // byte-order magic
        append16(&body, 1)  // major version
        append16(&body, 0)  // minor version
        append32(&body, 0xFFFF_FFFF)  // section length: unknown
        append32(&body, 0xFFFF_FFFF)
        var bytes = block(type: 0x0A0D_0D0A, body: body)
        // The interface every packet refers to: Ethernet, no snap length, µs.
        var interface: [UInt8] = []
        append16(&interface, 1)
        append16(&interface, 0)
        append32(&interface, 0)
        bytes += block(type: 1, body: interface)
        return bytes
    }

    package static func enhancedPacket(micros: UInt64, data: [UInt8], originalLength: UInt32? = nil) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(20 + data.count + 3)
        append32(&body, 0)  // interface 0
        append32(&body, UInt32(truncatingIfNeeded: micros >> 32))
        append32(&body, UInt32(truncatingIfNeeded: micros))
        append32(&body, UInt32(data.count))
        append32(&body, max(originalLength ?? 0, UInt32(data.count)))
        body += data
        body += [UInt8](repeating: 0, count: (4 - data.count % 4) % 4)
        return block(type: 6, body: body)
    }

    static func block(type: UInt32, body: [UInt8]) -> [UInt8] {
        let length = UInt32(12 + body.count)
        var bytes: [UInt8] = []
        append32(&bytes, type)
        append32(&bytes, length)
        bytes += body
        append32(&bytes, length)
        return bytes
    }

    static func append32(_ bytes: inout [UInt8], _ value: UInt32) { PcapFile.append32(&bytes, value) }
    static func append16(_ bytes: inout [UInt8], _ value: UInt16) { PcapFile.append16(&bytes, value) }
}
