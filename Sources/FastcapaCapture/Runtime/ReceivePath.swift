import CDPDK
import FastcapaFilter

/// How a port's frames reach the probe, what its packet buffers must hold, and
/// whether it delivers every frame whole. Decided for every port before any is
/// touched: a port that would cut frames short refuses to start, with the fix.
package struct ReceivePath: Sendable {
    package enum Kind: Sendable, Equatable {
        /// A DPDK driver (a NIC, net_null, net_ring): frames arrive as mbuf chains when it scatters.
        case device(scatters: Bool)
        /// net_pcap replaying capture files (`rx_pcap=`).
        case pcapFile
        /// net_pcap on live interfaces (libpcap: `iface=`, `rx_iface=`, `rx_iface_in=`).
        case pcapInterface
        /// net_af_packet: one TPACKET_V2 ring per queue, its sockets in one fanout group.
        case afPacket(AfPacketRing)
    }

    package let port: UInt16
    package let driver: String
    package let device: DeviceArguments
    package let kind: Kind
    /// The kernel interfaces the port captures (none for DPDK drivers and files).
    package let interfaces: [KernelInterface]
    /// What each `rx_pcap=` file holds that net_pcap cannot replay as the file holds it.
    package var replays: [ReplayFile] = []

    package struct ReplayFile: Sendable, Equatable {
        package var path: String
        package var survey: CaptureFileSurvey
    }

    /// net_pcap opens live interfaces with this snap length (RTE_ETH_PCAP_SNAPLEN,
    /// RTE_ETHER_MAX_JUMBO_FRAME_LEN): libpcap cuts longer frames, and the driver
    /// keeps only the cut length.
    package static let pcapSnapLength = 16_128

    /// The mbuf data room (headroom included) the port's pool needs: the
    /// default, or an af_packet ring slot's worth, since that driver copies each
    /// frame into a single mbuf.
    package var dataRoom: Int {
        let standard = Int(CDPDK_RTE_MBUF_DEFAULT_BUF_SIZE())
        guard case .afPacket(let ring) = kind else { return standard }
        return max(standard, ring.dataRoom)
    }

    /// Whether receive descriptors hold mbufs while they wait for frames. The
    /// af_packet driver takes one from the pool only when it copies a frame out
    /// of the kernel's ring.
    package var descriptorsHoldMbufs: Bool {
        if case .afPacket = kind { return false }
        return true
    }

    /// Whether a frame longer than one mbuf arrives as a chain of several
    /// (net_pcap chains records itself; af_packet never chains).
    package var chains: Bool {
        switch kind {
        case .device(let scatters): scatters
        case .pcapFile, .pcapInterface: true
        case .afPacket: false
        }
    }

    /// Frames this long or longer reached the end of what the receive path
    /// holds and were cut by the kernel; shorter ones are whole. `plan` makes
    /// sure every frame the interface carries is shorter, so only frames the
    /// kernel made itself (af_packet's reassembled datagrams) can reach it; the
    /// transmit workers drop those as `malformed` rather than publish them short.
    /// `Int.max` when a driver delivers frames of any length whole.
    package var cutLength: Int {
        switch kind {
        // The driver puts the outer VLAN tag back: a cut tagged frame is 4 bytes longer.
        case .afPacket(let ring): ring.frameBytes
        case .pcapInterface: Self.pcapSnapLength
        case .device, .pcapFile: Int.max
        }
    }

    /// The shortest record net_pcap cuts: DPDK 22.11's driver copies a record
    /// longer than one mbuf with a 16-bit count, so a record of 65,536 bytes
    /// and more comes out whole only while what is left past the first
    /// buffer's 65,536 bytes fits in it (the count wraps and still adds up).
    package var firstCutRecordLength: Int {
        Int(UInt16.max) + 1 + dataRoom - Int(CDPDK_RTE_PKTMBUF_HEADROOM())
    }

    /// Whether the port reads capture files once (net_pcap's `rx_pcap=` without
    /// `infinite_rx=1`): nothing is lost by reading them slower.
    package var replaysFilesOnce: Bool {
        guard case .pcapFile = kind else { return false }
        // net_pcap reads the value as a number: any but 0 loops the file.
        return (Int(device["infinite_rx"] ?? "0") ?? 0) == 0
    }

    /// What a user should know at start about how this port captures.
    package var warnings: [String] {
        if case .pcapFile = kind { return replays.flatMap(replayWarnings) }
        guard case .afPacket = kind, let interface = interfaces.first else { return [] }
        return [
            "port \(port) (\(driver), iface=\(interface.name)) does not capture faithfully: DPDK 22.11's af_packet "
                + "driver joins its sockets to a fanout group with PACKET_FANOUT_FLAG_DEFRAG, which no device argument "
                + "turns off, so the kernel reassembles IPv4 fragments before the probe sees them (fragments arrive as "
                + "one datagram; the fragments of a datagram that never completes never arrive), and the driver puts "
                + "the outer VLAN tag the kernel took off back as 0x8100 (802.1ad's 0x88A8 is lost). For a faithful "
                + "capture of a kernel interface use --vdev=net_pcap0,iface=\(interface.name)"
        ]
    }

    /// A replayed file's records that will not arrive as the file holds them:
    /// truncated ones (the original length is lost) and ones the driver cuts
    /// (dropped as malformed). Silence when every record arrives whole.
    private func replayWarnings(_ replay: ReplayFile) -> [String] {
        let survey = replay.survey
        let source = "port \(port) (\(driver), rx_pcap=\(replay.path))"
        let read = survey.stoppedEarly ? " (in the first GiB of records, as far as fastcapa reads at start)" : ""
        var warnings: [String] = []
        if let first = survey.firstTruncated {
            warnings.append(
                "\(source): \(survey.truncated) of \(survey.records) records are truncated\(read), captured short of "
                    + "their original length (the first, record \(first.record), holds \(first.captured) of "
                    + "\(first.original) bytes). net_pcap hands over the captured bytes only, so their messages carry the "
                    + "captured length as the original one (consume's orig_len), and a capture filter's "
                    + "len, greater and less test the captured length where tcpdump -r tests the original. A live "
                    + "capture never has truncated frames; only a replay of such a file differs"
            )
        }
        let cut = survey.longRecords.filter { $0 >= firstCutRecordLength }
        if let longest = cut.max() {
            let kept = "\(replay.path).whole.pcap"
            warnings.append(
                "\(source): \(cut.count) record\(cut.count == 1 ? " is" : "s are") \(firstCutRecordLength) bytes "
                    + "or longer\(read) (the longest \(longest)), which DPDK 22.11's net_pcap cannot deliver whole "
                    + "(its copy counts 16 bits): the probe drops \(cut.count == 1 ? "it" : "them") as malformed, "
                    + "counted, never published short. To replay the file without them: tshark -r \(replay.path) "
                    + "-Y 'frame.cap_len < \(firstCutRecordLength)' -F pcap -w \(kept)"
            )
        }
        return warnings
    }

    /// Checks the port's queues and, for a kernel interface, that every frame it
    /// can hand the probe arrives whole.
    package static func plan(port: UInt16, info: rte_eth_dev_info, rxQueues: Int) throws(CaptureError) -> ReceivePath {
        let driver = info.driver_name.map { String(cString: $0) } ?? "unknown"
        guard rxQueues <= Int(info.max_rx_queues) else {
            throw CaptureError(
                "port \(port) (\(driver)) has at most \(info.max_rx_queues) receive queue\(info.max_rx_queues == 1 ? "" : "s"); \(rxQueues) were asked for",
                fix:
                    "Use \(info.max_rx_queues) receive queue\(info.max_rx_queues == 1 ? "" : "s") or fewer (rx-queues; net_af_packet takes qpairs=N, net_null and net_ring accept more)."
            )
        }
        let name = info.device.flatMap { rte_dev_name($0) }.map { String(cString: $0) } ?? "port \(port)"
        let device = DeviceArguments(
            name: name,
            arguments: CDPDK_rte_devargs_args(info.device).map { String(cString: $0) } ?? ""
        )
        let interfaceNames: [String]
        switch driver {
        case "net_af_packet": interfaceNames = device.values("iface")
        case "net_pcap":
            interfaceNames = device.values("iface") + device.values("rx_iface") + device.values("rx_iface_in")
        default: interfaceNames = []
        }
        var interfaces: [KernelInterface] = []
        for interfaceName in interfaceNames { interfaces.append(try KernelInterface.read(interfaceName)) }
        let kind: Kind
        switch driver {
        case "net_af_packet":
            do throws(AfPacketRing.RingError) {
                let ring = try AfPacketRing(device)
                try ring.check(device: device, largestFrame: interfaces.map(\.largestFrame).max())
                kind = .afPacket(ring)
            } catch {
                throw CaptureError(error.problem, fix: error.fix)
            }
        case "net_pcap":
            kind = interfaceNames.isEmpty ? .pcapFile : .pcapInterface
        default:
            kind = .device(scatters: info.rx_offload_capa & CDPDK_RTE_ETH_RX_OFFLOAD_SCATTER() != 0)
        }
        var path = ReceivePath(port: port, driver: driver, device: device, kind: kind, interfaces: interfaces)
        if case .pcapFile = kind {
            path.replays = device.values("rx_pcap").compactMap { file in
                CaptureFileSurvey.read(file).map { ReplayFile(path: file, survey: $0) }
            }
        }
        try path.checkQueues(rxQueues, available: Int(info.max_rx_queues))
        for interface in interfaces {
            try path.checkLength(interface)
            try path.checkAggregation(interface)
        }
        return path
    }

    /// A kernel interface spreads its frames over every socket (af_packet's
    /// fanout group, one libpcap handle per `rx_iface=`): a queue the probe does
    /// not read loses its share in the kernel.
    private func checkQueues(_ rxQueues: Int, available: Int) throws(CaptureError) {
        guard !interfaces.isEmpty, rxQueues < available else { return }
        let source = if case .afPacket = kind { "qpairs=\(available)" } else { "\(available) rx_iface= arguments" }
        throw CaptureError(
            "port \(port) (\(driver)) has \(available) receive queues (\(source)) and the kernel hands frames to all of "
                + "them, but \(rxQueues) \(rxQueues == 1 ? "is" : "are") read: the frames of the others would be dropped in the kernel",
            fix: "Use -q \(available) (rx-queues), or give the device \(rxQueues) queue\(rxQueues == 1 ? "" : "s")."
        )
    }

    /// Frames the interface carries must be shorter than what the port holds, so a
    /// frame that fills it can only be one the kernel made (and cut).
    private func checkLength(_ interface: KernelInterface) throws(CaptureError) {
        let faithful = "--vdev=net_pcap0,iface=\(interface.name)"
        switch kind {
        case .afPacket(let ring):
            guard interface.largestFrame >= ring.frameBytes else { return }
            let problem =
                "port \(port) (\(device.name), iface=\(interface.name), framesz=\(ring.frameSize)) would cut frames: "
                + "\(interface.name)'s MTU is \(interface.mtu), so frames of up to \(interface.largestFrame) bytes "
                + "arrive, and a \(ring.frameSize)-byte ring slot holds frames shorter than \(ring.frameBytes) "
                + "bytes whole (framesz less the kernel's \(AfPacketRing.macOffset)-byte header)"
            let larger = ring.repaired(holding: interface.largestFrame)
            guard larger.frameBytes > interface.largestFrame else {
                let largestMTU = AfPacketRing.largestSuggestedFrameSize - AfPacketRing.macOffset - 23
                throw CaptureError(
                    problem + "; no ring slot af_packet can use holds frames that long",
                    fix:
                        "Lower the interface's MTU to \(largestMTU) or less (ip link set \(interface.name) mtu \(largestMTU))."
                )
            }
            throw CaptureError(
                problem,
                fix: "Use \(larger.arguments(of: device).vdev) (a ring slot that holds them whole). Or lower the "
                    + "interface's MTU (ip link set \(interface.name) mtu \(ring.frameBytes - 23)), or capture with "
                    + "\(faithful) (faithful for fragments too)."
            )
        case .pcapInterface:
            guard interface.largestFrame >= Self.pcapSnapLength else { return }
            let largestMTU = Self.pcapSnapLength - 23
            throw CaptureError(
                "port \(port) (\(device.name), \(interface.name)) would cut frames: \(interface.name)'s MTU is "
                    + "\(interface.mtu), so frames of up to \(interface.largestFrame) bytes arrive, and DPDK 22.11's "
                    + "net_pcap captures live interfaces with a snap length of \(Self.pcapSnapLength) bytes",
                fix:
                    "Lower the interface's MTU to \(largestMTU) or less (ip link set \(interface.name) mtu \(largestMTU))."
            )
        case .device, .pcapFile:
            return
        }
    }

    /// GRO, LRO and hardware GRO hand packet sockets frames the wire never carried.
    func checkAggregation(_ interface: KernelInterface) throws(CaptureError) {
        if !interface.aggregation.isEmpty {
            let names = ["gro": "GRO", "lro": "LRO", "rx-gro-hw": "hardware GRO (rx-gro-hw)"]
            let offloads = interface.aggregation.map { names[$0] ?? $0 }.joined(separator: " and ")
            let off = (["gro", "lro"] + interface.aggregation.filter { !["gro", "lro"].contains($0) })
                .map { "\($0) off" }.joined(separator: " ")
            throw CaptureError(
                "interface \(interface.name) (port \(port), \(driver)) merges received frames before any capture sees "
                    + "them (\(offloads) on): packet sockets get frames of up to 64 KiB that the wire never carried; "
                    + "the probe would publish them as if it had, or drop them as cut when they reach \(cutLength) bytes",
                fix: "Turn the offloads off for capture: ethtool -K \(interface.name) \(off)."
            )
        }
    }
}
