/// pcapng output: one section naming the application that wrote it
/// (`shb_userappl`), Ethernet interfaces with microsecond or nanosecond
/// timestamps (`if_tsresol` 6 or 9) described as they first appear (an Interface Description
/// Block may come anywhere before the packets that use it), one Enhanced Packet
/// Block per packet with its captured and original lengths.
package enum Pcapng {
    /// The Section Header Block; `userApplication` (`shb_userappl`) names the writer and its version.
    package static func sectionHeader(userApplication: String) -> [UInt8] {
        var body: [UInt8] = []
        append32(&body, 0x1A2B_3C4D)  // byte-order magic
        append16(&body, 1)  // major version
        append16(&body, 0)  // minor version
        append32(&body, 0xFFFF_FFFF)  // section length: unknown
        append32(&body, 0xFFFF_FFFF)
        option(&body, code: 4, Array(userApplication.utf8))  // shb_userappl
        endOfOptions(&body)
        return block(type: 0x0A0D_0D0A, body: body)
    }

    /// An Interface Description Block: Ethernet, `snapLength`, µs timestamps
    /// (ns with `nanoseconds`), and `if_name` when given. Interfaces are
    /// numbered from 0 in the order their blocks are written.
    package static func interface(name: String?, snapLength: UInt32, nanoseconds: Bool = false) -> [UInt8] {
        var body: [UInt8] = []
        append16(&body, 1)  // LINKTYPE_ETHERNET
        append16(&body, 0)
        append32(&body, snapLength)
        if let name { option(&body, code: 2, Array(name.utf8)) }  // if_name
        option(&body, code: 9, [nanoseconds ? 9 : 6])  // if_tsresol: 10^-9 or 10^-6 s
        endOfOptions(&body)
        return block(type: 1, body: body)
    }

    /// An Enhanced Packet Block on `interface` (µs timestamps): the captured
    /// bytes and the frame's original length (never less than what was captured).
    package static func enhancedPacket(
        interface: UInt32 = 0,
        micros: UInt64,
        data: [UInt8],
        originalLength: UInt32? = nil
    ) -> [UInt8] {
        enhancedPacket(interface: interface, timestamp: micros, data: data, originalLength: originalLength)
    }

    /// An Enhanced Packet Block whose `timestamp` counts in its interface's
    /// resolution (`if_tsresol`: µs or ns since the epoch).
    package static func enhancedPacket(
        interface: UInt32 = 0,
        timestamp: UInt64,
        data: [UInt8],
        originalLength: UInt32? = nil
    ) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(20 + data.count + 3)
        append32(&body, interface)
        append32(&body, UInt32(truncatingIfNeeded: timestamp >> 32))
        append32(&body, UInt32(truncatingIfNeeded: timestamp))
        append32(&body, UInt32(data.count))
        append32(&body, max(originalLength ?? 0, UInt32(data.count)))
        body += data
        pad(&body)
        return block(type: 6, body: body)
    }

    static func option(_ body: inout [UInt8], code: UInt16, _ value: [UInt8]) {
        append16(&body, code)
        append16(&body, UInt16(value.count))
        body += value
        pad(&body)
    }

    static func endOfOptions(_ body: inout [UInt8]) {
        append32(&body, 0)
    }

    static func pad(_ body: inout [UInt8]) {
        body += [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
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
