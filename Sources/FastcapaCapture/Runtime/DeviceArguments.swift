import CDPDK
import Glibc

/// A virtual device's arguments, as given to EAL (`--vdev=net_af_packet0,iface=eth1,qpairs=2`)
/// or as DPDK keeps them (`iface=eth1,qpairs=2` for device `net_af_packet0`).
package struct DeviceArguments: Sendable, Equatable {
    /// The device's name: `net_af_packet0`, `net_pcap1`.
    package var name: String
    /// `key=value` pairs in order; a key may repeat (`rx_iface=` once per queue).
    package var pairs: [Pair]

    package struct Pair: Sendable, Equatable {
        package var key: String
        package var value: String
    }

    package init(name: String, arguments: String) {
        self.name = name
        pairs = arguments.split(separator: ",", omittingEmptySubsequences: true).map { item in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return Pair(
                key: String(parts[0]).trimmingSpaces,
                value: parts.count > 1 ? String(parts[1]).trimmingSpaces : ""
            )
        }
    }

    /// `net_af_packet0,iface=eth1` (a `--vdev` value).
    package init(vdev: String) {
        let name = vdev.prefix { $0 != "," }
        self.init(name: String(name), arguments: String(vdev.dropFirst(name.count)))
    }

    /// The `--vdev` values among EAL arguments (`--vdev=X`, `--vdev X`).
    package static func virtualDevices(in eal: [String]) -> [DeviceArguments] {
        var devices: [DeviceArguments] = []
        var index = 0
        while index < eal.count {
            let argument = eal[index]
            if argument.hasPrefix("--vdev=") {
                devices.append(DeviceArguments(vdev: String(argument.dropFirst("--vdev=".count))))
            } else if argument == "--vdev", index + 1 < eal.count {
                devices.append(DeviceArguments(vdev: eal[index + 1]))
                index += 1
            }
            index += 1
        }
        return devices
    }

    /// The last value given for `key`.
    package subscript(key: String) -> String? { pairs.last { $0.key == key }?.value }

    /// Every value given for `key`, in order.
    package func values(_ key: String) -> [String] { pairs.filter { $0.key == key }.map(\.value) }

    /// `--vdev=NAME,k=v,…` as a user would write it.
    package var vdev: String { "--vdev=" + ([name] + pairs.map { "\($0.key)=\($0.value)" }).joined(separator: ",") }

    /// This device with `key` set to `value` (replacing earlier values).
    package func setting(_ key: String, to value: String) -> DeviceArguments {
        var copy = self
        if let index = copy.pairs.lastIndex(where: { $0.key == key }) {
            copy.pairs[index].value = value
        } else {
            copy.pairs.append(Pair(key: key, value: value))
        }
        return copy
    }

    /// Whether the device is DPDK's af_packet driver (or its alias).
    package var isAfPacket: Bool { name.hasPrefix("net_af_packet") || name.hasPrefix("eth_af_packet") }
}

/// The packet ring of DPDK 22.11's net_af_packet (drivers/net/af_packet/rte_eth_af_packet.c):
/// its `framesz`, `blocksz` and `framecnt` devargs, the driver's defaults, the
/// kernel's rules for them, and how long a frame a ring slot holds whole.
///
/// Each slot is a TPACKET_V2 frame: the kernel writes a 32-byte header and a
/// `struct sockaddr_ll`, aligns, and puts the Ethernet header at byte 66; what
/// does not fit in the slot is cut off (`tp_snaplen` < `tp_len`). The driver
/// copies `tp_snaplen` bytes into one mbuf (it cannot chain) and drops `tp_len`,
/// so a cut frame would be published short: the probe refuses to start instead.
package struct AfPacketRing: Sendable, Equatable {
    package var frameSize: Int
    package var blockSize: Int
    package var frameCount: Int

    /// The driver's defaults: `framesz=2048`, `framecnt=512`, `blocksz` one page.
    package static let defaultFrameSize = 2048
    package static let defaultFrameCount = 512
    package static var pageSize: Int { Int(getpagesize()) }

    /// Where the kernel puts an Ethernet header in a TPACKET_V2 slot:
    /// TPACKET_ALIGN(TPACKET2_HDRLEN (52) + 16) − 14.
    package static let macOffset = 66
    /// What the driver requires an mbuf to hold: the slot less its 32-byte
    /// `tpacket2_hdr` (TPACKET2_HDRLEN − sizeof(struct sockaddr_ll)).
    package static let driverHeader = 32
    /// The kernel's TPACKET_ALIGNMENT: slot sizes are multiples of it.
    package static let alignment = 16
    /// An mbuf's data room is 16 bits (headroom included): the largest slot
    /// whose `framesz − 32` fits beside the 128-byte headroom, a multiple of 16.
    package static let largestFrameSize = (Int(UInt16.max) - Int(RTE_PKTMBUF_HEADROOM) + driverHeader) / 16 * 16

    package init(
        frameSize: Int = AfPacketRing.defaultFrameSize,
        blockSize: Int = AfPacketRing.pageSize,
        frameCount: Int = AfPacketRing.defaultFrameCount
    ) {
        self.frameSize = frameSize
        self.blockSize = blockSize
        self.frameCount = frameCount
    }

    /// The ring a device's arguments ask for. Values are checked by `problems(device:)`.
    package init(_ device: DeviceArguments) throws(RingError) {
        func number(_ key: String, default value: Int) throws(RingError) -> Int {
            guard let text = device[key] else { return value }
            guard let number = Int(text), number > 0 else {
                throw RingError(
                    problem: "\(device.name): \(key)=\(text) is not a positive number of "
                        + (key == "framecnt" ? "frames" : "bytes"),
                    fix: "Use \(device.setting(key, to: "\(value)").vdev)."
                )
            }
            return number
        }
        self.init(
            frameSize: try number("framesz", default: Self.defaultFrameSize),
            blockSize: try number("blocksz", default: Self.pageSize),
            frameCount: try number("framecnt", default: Self.defaultFrameCount)
        )
    }

    /// A device argument the driver or the kernel refuses, with the fix.
    package struct RingError: Error, Equatable, CustomStringConvertible {
        package var problem: String
        package var fix: String
        package var description: String { "\(problem). \(fix)" }
    }

    /// The most bytes of a frame a slot holds, counted as the kernel counts
    /// them: without the outermost VLAN tag, which the kernel takes off before
    /// the ring and the driver puts back into the mbuf. A frame that fills the
    /// slot may have been cut; only shorter ones are certainly whole.
    package var frameBytes: Int { frameSize - Self.macOffset }

    /// The mbuf data room (headroom included) the driver needs for this ring.
    package var dataRoom: Int { frameSize - Self.driverHeader + Int(RTE_PKTMBUF_HEADROOM) }

    /// Slots fastcapa suggests are multiples of this: a whole number of them
    /// (at most 8) then fills a block of a few pages.
    package static let suggestedStep = 512
    /// The largest slot fastcapa suggests.
    package static let largestSuggestedFrameSize = largestFrameSize / suggestedStep * suggestedStep

    /// The smallest slot fastcapa suggests that holds `bytes` of a frame whole.
    package static func frameSize(holding bytes: Int) -> Int {
        (bytes + macOffset + suggestedStep - 1) / suggestedStep * suggestedStep
    }

    /// The smallest block that `frameSize` slots fill exactly: a multiple of the page size and of the slot.
    package static func blockSize(for frameSize: Int) -> Int {
        var (a, b) = (frameSize, pageSize)
        while b != 0 { (a, b) = (b, a % b) }
        return frameSize / a * pageSize
    }

    /// The smallest slot the kernel accepts: TPACKET_ALIGNMENT-aligned, holding Ethernet's 60-byte minimum.
    package static let smallestFrameSize = (macOffset + 60 + alignment - 1) / alignment * alignment

    /// The ring to use instead of this one, which the driver and the kernel accept: the slot asked for when it
    /// is valid (else the nearest valid one), enlarged when `largestFrame` (the longest frame the interface
    /// carries) would not fit in it whole and a slot can hold it; a block the slot fills exactly (when that
    /// takes more than 8 slots, a slot of a multiple of `suggestedStep` instead); whole blocks of frames.
    package func repaired(holding largestFrame: Int? = nil) -> AfPacketRing {
        var frame = min(frameSize, Self.largestSuggestedFrameSize)
        frame = max(Self.smallestFrameSize, (frame + Self.alignment - 1) / Self.alignment * Self.alignment)
        if let largestFrame, frame - Self.macOffset <= largestFrame {
            let holding = Self.frameSize(holding: largestFrame + 1)
            if holding <= Self.largestSuggestedFrameSize { frame = holding }
        }
        var block = blockSize
        if block % Self.pageSize != 0 || block % frame != 0 {
            block = Self.blockSize(for: frame)
            if block > 8 * frame {
                frame = min(Self.frameSize(holding: frame - Self.macOffset), Self.largestSuggestedFrameSize)
                block = Self.blockSize(for: frame)
            }
        }
        let perBlock = block / frame
        return AfPacketRing(
            frameSize: frame,
            blockSize: block,
            frameCount: (frameCount + perBlock - 1) / perBlock * perBlock
        )
    }

    /// `device` with this ring: each of framesz, blocksz and framecnt that `device` gives or that differs
    /// from the driver's default.
    package func arguments(of device: DeviceArguments) -> DeviceArguments {
        var result = device
        for (key, value, standard) in [
            ("framesz", frameSize, Self.defaultFrameSize), ("blocksz", blockSize, Self.pageSize),
            ("framecnt", frameCount, Self.defaultFrameCount),
        ] where value != standard || device[key] != nil {
            result = result.setting(key, to: "\(value)")
        }
        return result
    }

    /// Checks the ring as the driver and the kernel would (the kernel refuses
    /// PACKET_RX_RING with EINVAL, and DPDK then fails to start with no reason
    /// given). Every refusal's fix is one `--vdev` to use instead: a ring that
    /// passes, and holds frames of up to `largestFrame` bytes (the interface's,
    /// when known) whole, so that following it leads to no second refusal.
    package func check(device: DeviceArguments, largestFrame: Int? = nil) throws(RingError) {
        let name = device.name
        let suggested = repaired(holding: largestFrame).arguments(of: device).vdev
        let fix = "Use \(suggested)."
        let smallest = Self.smallestFrameSize
        if frameSize % Self.alignment != 0 || frameSize < smallest {
            throw RingError(
                problem: "\(name): framesz=\(frameSize) is not a multiple of \(Self.alignment) of at least "
                    + "\(smallest) bytes (the kernel's TPACKET_ALIGNMENT and a 60-byte frame)",
                fix: fix
            )
        }
        if frameSize > Self.largestFrameSize {
            throw RingError(
                problem: "\(name): framesz=\(frameSize) is larger than a packet buffer can be: the af_packet driver "
                    + "copies each frame into one mbuf, whose data room is at most 65,535 bytes",
                fix: "Use \(suggested) (it holds frames shorter than "
                    + "\(Self.largestSuggestedFrameSize - Self.macOffset) bytes whole), or capture with "
                    + "--vdev=net_pcap0,iface=IF."
            )
        }
        if blockSize % Self.pageSize != 0 || blockSize % frameSize != 0 {
            // DPDK's driver finds slot i at i × framesz: slots must fill blocks exactly, or it reads between them.
            let problem =
                blockSize < frameSize
                ? "blocksz=\(blockSize)\(device["blocksz"] == nil ? " (the driver's default: one page)" : "") is "
                    + "smaller than framesz=\(frameSize): a block must hold whole slots and be a multiple of the "
                    + "page size (\(Self.pageSize))"
                : "blocksz=\(blockSize) must be a multiple of both the page size (\(Self.pageSize)) and framesz "
                    + "(\(frameSize)): DPDK's af_packet driver reads slot i at i × framesz, so a slot may not "
                    + "straddle or leave a gap at the end of a block"
            throw RingError(problem: "\(name): " + problem, fix: fix)
        }
        let perBlock = blockSize / frameSize
        if frameCount % perBlock != 0 {
            throw RingError(
                problem: "\(name): framecnt=\(frameCount) is not a multiple of the \(perBlock) frames a block holds "
                    + "(blocksz \(blockSize) / framesz \(frameSize)): the kernel refuses such a ring",
                fix: fix
            )
        }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
