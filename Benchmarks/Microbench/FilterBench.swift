import CDPDK
import FastcapaCapture
import Glibc

// The capture filter alone: nanoseconds per packet of the verdicts (JIT and
// interpreter), on 64-byte frames of a realistic mix in mbufs, bursts of 32, as
// the receive loop runs them. Needs EAL (DPDK's converter allocates with
// rte_malloc): main.swift's.

/// A 64-byte Ethernet/IPv4 frame: TCP or UDP with these ports.
func frame(udp: Bool, source: UInt16, destination: UInt16) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 64)
    bytes[0..<6] = [0x02, 0, 0, 0, 0, 2]
    bytes[6..<12] = [0x02, 0, 0, 0, 0, 1]
    bytes[12] = 0x08
    bytes[14] = 0x45
    bytes[16] = 0
    bytes[17] = 50
    bytes[22] = 64
    bytes[23] = udp ? 17 : 6
    bytes[26..<30] = [10, 0, 0, 1]
    bytes[30..<34] = [10, 0, 0, 2]
    bytes[34] = UInt8(source >> 8)
    bytes[35] = UInt8(source & 0xFF)
    bytes[36] = UInt8(destination >> 8)
    bytes[37] = UInt8(destination & 0xFF)
    if !udp { bytes[46] = 0x50 }
    return bytes
}

/// Frames of the mix, a quarter each: TCP 443, UDP 53, TCP 80, UDP 123.
let mix = [
    frame(udp: false, source: 40_000, destination: 443), frame(udp: true, source: 40_001, destination: 53),
    frame(udp: false, source: 40_002, destination: 80), frame(udp: true, source: 40_003, destination: 123),
]

func filterBenchmarks() {
    guard let pool = rte_pktmbuf_pool_create("microbench", 1023, 0, 0, CDPDK_RTE_MBUF_DEFAULT_BUF_SIZE(), -1) else {
        print("capture filter: skipped, no mempool")
        return
    }
    defer { rte_mempool_free(pool) }
    let burst = 32
    let packets = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: burst)
    let verdicts = UnsafeMutablePointer<UInt64>.allocate(capacity: burst)
    defer {
        packets.deallocate()
        verdicts.deallocate()
    }
    for index in 0..<burst {
        let packet = rte_pktmbuf_alloc(pool)!
        let bytes = mix[index % mix.count]
        let data = rte_pktmbuf_append(packet, UInt16(bytes.count))!
        bytes.withUnsafeBytes {
            UnsafeMutableRawPointer(data).copyMemory(from: $0.baseAddress!, byteCount: bytes.count)
        }
        packets[index] = packet
    }
    defer { CDPDK_rte_pktmbuf_free_bulk(packets, UInt32(burst)) }

    print("capture filter verdicts, 64-byte frames (TCP 443, UDP 53, TCP 80, UDP 123), bursts of \(burst):")
    for expression in ["ip or not ip", "tcp port 443 or udp port 53", "vlan and (tcp port 443 or udp port 53)"] {
        for engine in FilterEngine.allCases {
            guard let filter = try? PacketFilter(expression: expression, snapLength: 262_144, engine: engine) else {
                print("  '\(expression)' \(engine): cannot load")
                continue
            }
            let bursts = 400_000
            let nanos = measure(bursts, rounds: 5) { iterations in
                var accepted: UInt = 0
                for _ in 0..<iterations {
                    filter.evaluate(packets, burst, into: verdicts)
                    accepted &+= UInt(verdicts[1])
                }
                consume(accepted)
            }
            let kept = (0..<burst).filter { verdicts[$0] != 0 }.count
            let name = "'\(expression)' \(engine.rawValue)"
            let padded = name + String(repeating: " ", count: max(0, 54 - name.count))
            print(
                "  \(padded)"
                    + String(format: "%7.2f ns per packet", nanos / Double(burst))
                    + " (\(filter.isNative ? "native" : "interpreted"), keeps \(kept) of \(burst))"
            )
        }
    }
}
