import CDPDK
import CLinux
import FastcapaCapture
import FastcapaFilter
import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

/// The capture filter's eBPF program, JIT-compiled and interpreted, against
/// libpcap's own interpreter (`pcap_offline_filter`, tcpdump's verdict) on
/// every frame of a corpus, each frame in mbufs exactly as net_pcap fills them:
/// one segment when it fits the 2,048 bytes after the headroom, else 2,048
/// bytes then 2,176 per later segment (net_pcap drops the headroom of those).
///
/// The oracle judges what the probe can know: the frame as the device
/// delivers it. A record a capture file cut (captured length below its
/// original length) reaches the probe through net_pcap as a frame of its
/// captured length (net_pcap sets `pkt_len` to the captured length and passes
/// the original length nowhere), so libpcap is given the captured length as
/// the original length too: `len`, `greater` and `less` test the frame's
/// length as delivered, which on a NIC is its length on the wire.
@Suite(.serialized) struct FilterDifferentialTests {
    /// ≥ 30 expressions: five common ones (also replayed end to end, `EndToEnd.Filters`), lengths, link
    /// layer, VLAN and QinQ, IPv6 and its extension headers, indirect loads, arithmetic, deep loads across
    /// segments, loads past every frame.
    static let expressions = [
        "ip6 and not icmp6",
        "greater 512 and not arp",
        "ether broadcast or ether multicast",
        "net 10.0.0.0/8 and tcp",
        "not ip and not ip6",
        "ip or not ip",
        "len > 60",
        "less 100",
        "len = 54 or len = 60",
        "greater 2048",
        "ether broadcast",
        "ether multicast",
        "ether[0] & 1 = 0",
        "ether host ff:ff:ff:ff:ff:fe",
        "vlan",
        "vlan 100",
        "vlan and vlan",
        "vlan and ip6",
        "vlan and (tcp port 443 or udp port 53)",
        "not vlan and udp",
        "arp",
        "ip6 and tcp",
        "icmp6",
        "ip6 multicast",
        "ip multicast",
        "tcp[tcpflags] & tcp-syn != 0",
        "tcp dst port 443",
        "udp port 53",
        "port 53 or port 443",
        "ip[6:2] & 0x3fff != 0",
        "host 192.168.1.9 and not tcp",
        "src net 10.0.0.0/8",
        "ip[0] & 0xf > 5",
        "ether proto 0x88cc",
        "ether[12:2] < 0x600",
        "ether[2046:4] = 0xdeadbeef",
        "ether[4222:4] = 0xdeadbeef or ether[6398:4] = 0xdeadbeef",
        "udp[4200:2] > 0",
        "ether[65534] = 0 or ether[65535] = 0",
        "ether[ether[12] * 16] = 0",
        "ip[ip[0] & 0xf] = 0x40",
        "tcp[0] + tcp[1] * 2 - udp[0] / 2 > 100",
        "ether[0:4] % 7 = 3 or ether[4:2] ^ 0xffff = 0",
    ]

    /// The generated corpus, built once.
    static let generated = FilterCorpus.records()

    @Test func theCorpusHoldsEveryKindOfFrame() {
        let records = Self.generated
        #expect(records.count > 2_000)
        #expect(records.contains { $0.data.count < 14 }, "runts")
        #expect(records.contains { $0.data.count > 4_224 }, "chains of three segments and more")
        #expect(records.contains { Int($0.originalLength) > $0.data.count }, "truncated records")
        #expect(records.contains { $0.data.count > 16 && $0.data[12] == 0x88 && $0.data[13] == 0xA8 }, "QinQ")
        #expect(records.contains { $0.data.count > 20 && $0.data[12] == 0x86 && $0.data[20] == 0 }, "IPv6 hop-by-hop")
    }

    @Test(arguments: expressions)
    func generatedFramesAsLibpcapDecides(expression: String) throws {
        let differences = try FilterDifferential.shared().differences(expression, in: Self.generated)
        #expect(differences.isEmpty, "\(expression): \(differences.count) frames differ, e.g. \(differences.prefix(4))")
    }

    @Test(.sharedCorpus, arguments: expressions)
    func sharedCapturesAsLibpcapDecides(expression: String) throws {
        let records = try SharedCorpus.records().filter { $0.data.count <= 65_535 }
        let differences = try FilterDifferential.shared().differences(expression, in: records)
        #expect(differences.isEmpty, "\(expression): \(differences.count) frames differ, e.g. \(differences.prefix(4))")
    }
}

/// A private EAL and a mempool for the whole test process (EAL starts once per
/// process): no hugepages, no PCI, its own file prefix and no runtime folder left, the
/// calling thread's CPUs given back after rte_eal_init pins it.
final class FilterDifferential: @unchecked Sendable {
    let pool: OpaquePointer

    private static let started: Result<FilterDifferential, CaptureError> = {
        () -> Result<FilterDifferential, CaptureError> in
        var cpus = cpu_set_t()
        let hadAffinity = CLinux_pthread_getaffinity_np(&cpus) == 0
        defer { if hadAffinity { _ = CLinux_pthread_setaffinity_np(&cpus) } }
        do throws(CaptureError) {
            let eal = try Eal.initialize(
                programName: "fastcapa-filter-tests",
                arguments: [
                    "--no-huge", "--no-pci", "-m", "128", "-l", "0", "--log-level=lib.eal:error",
                    // For SymmetricRSSTests: a port made at start (rte_dev_probe later would
                    // also ask secondary processes, whose runtime folder is gone).
                    "--vdev=net_null_rss0",
                ]
            )
            // Its own file prefix (fastcapa-PID); nothing attaches to it, so its runtime folder goes now.
            eal.removeRuntimeFiles()
            guard let pool = rte_pktmbuf_pool_create("filter-tests", 4_095, 0, 0, 2_176, -1) else {
                eal.cleanup()
                return .failure(CaptureError("no mempool (rte_errno \(CDPDK_rte_errno()))", fix: ""))
            }
            return .success(FilterDifferential(pool: pool))
        } catch {
            return .failure(error)
        }
    }()

    private init(pool: OpaquePointer) { self.pool = pool }

    static func shared() throws -> FilterDifferential { try started.get() }

    /// A frame (tcpdump's record index, lengths) where an engine and libpcap disagree.
    struct Difference: CustomStringConvertible {
        var index: Int
        var captured: Int
        var original: Int
        var libpcap: Bool
        var jit: Bool
        var interpreter: Bool
        var head: [UInt8]
        var description: String {
            "record \(index) (\(captured) of \(original) bytes, starts "
                + head.map { String(format: "%02x", $0) }.joined()
                + "): libpcap \(libpcap), JIT \(jit), interpreter \(interpreter)"
        }
    }

    private let lock = NSLock()

    /// The records (at most 65,535 bytes each) on which the JIT or the
    /// interpreter decides otherwise than libpcap on the frame as delivered.
    func differences(_ expression: String, in records: [PcapRecord]) throws -> [Difference] {
        lock.lock()
        defer { lock.unlock() }
        let classic = try CaptureFilter(expression)
        let jit = try PacketFilter(classic, engine: .jit)
        let interpreter = try PacketFilter(classic, engine: .interpreter)
        #expect(jit.isNative, "DPDK has a JIT on this platform")
        var differences: [Difference] = []
        let packet = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: 1)
        let verdict = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        defer {
            packet.deallocate()
            verdict.deallocate()
        }
        for (index, record) in records.enumerated() {
            packet[0] = try mbuf(record.data)
            defer { CDPDK_rte_pktmbuf_free(packet[0]) }
            jit.evaluate(packet, 1, into: verdict)
            let native = verdict[0] != 0
            interpreter.evaluate(packet, 1, into: verdict)
            let interpreted = verdict[0] != 0
            let expected = classic.matches(record.data, originalLength: record.data.count)
            if native != expected || interpreted != expected {
                differences.append(
                    Difference(
                        index: index,
                        captured: record.data.count,
                        original: Int(record.originalLength),
                        libpcap: expected,
                        jit: native,
                        interpreter: interpreted,
                        head: Array(record.data.prefix(24))
                    )
                )
            }
        }
        return differences
    }

    /// `frame` in mbufs as net_pcap's receive fills them (eth_pcap_rx, and
    /// eth_pcap_rx_jumbo past the first segment's tailroom).
    func mbuf(_ frame: [UInt8]) throws -> OpaquePointer {
        let head = try #require(rte_pktmbuf_alloc(pool))
        var copied = 0
        var segment = head
        while true {
            let room = Int(rte_pktmbuf_tailroom(segment))
            let count = min(room, frame.count - copied)
            if count > 0 {
                let data = try #require(rte_pktmbuf_append(segment, UInt16(count)))
                frame.withUnsafeBytes {
                    UnsafeMutableRawPointer(data).copyMemory(from: $0.baseAddress! + copied, byteCount: count)
                }
            }
            copied += count
            if segment != head { #expect(rte_pktmbuf_chain(head, segment) == 0) }
            guard copied < frame.count else { break }
            segment = try #require(rte_pktmbuf_alloc(pool))
            // Later segments start at the buffer's first byte.
            let headroom = rte_pktmbuf_headroom(segment)
            _ = rte_pktmbuf_prepend(segment, headroom)
            _ = rte_pktmbuf_trim(segment, headroom)
        }
        #expect(Int(CDPDK_rte_mbuf_pkt_len(head)) == frame.count)
        return head
    }
}
