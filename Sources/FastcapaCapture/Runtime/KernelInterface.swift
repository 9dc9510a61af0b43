import CLinux
import Glibc

/// A Linux network interface a port captures through the kernel (net_af_packet,
/// or net_pcap with `iface=`/`rx_iface=`): how long a frame it can hand a
/// packet socket.
package struct KernelInterface: Sendable, Equatable {
    package var name: String
    package var mtu: Int
    /// Receive offloads that merge frames into larger ones before any packet
    /// socket sees them, when they are on: `gro`, `lro`, `rx-gro-hw` (hardware GRO),
    /// as `ethtool -K` names them.
    package var aggregation: [String] = []

    /// The longest frame the interface hands a packet socket with no receive
    /// aggregation: its MTU, the Ethernet header and two VLAN tags (an 802.1ad
    /// pair; a Linux interface accepts the first tag beyond its MTU).
    package var largestFrame: Int { mtu + 14 + 8 }

    /// Reads the interface's MTU (SIOCGIFMTU) and receive aggregation (ethtool's features: GRO, LRO and
    /// hardware GRO).
    package static func read(_ name: String) throws(CaptureError) -> KernelInterface {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else {
            throw CaptureError("cannot open a socket to ask about interface \(name): \(errnoText())", fix: "")
        }
        defer { close(fd) }
        var mtu: Int32 = 0
        guard CLinux_ioctl_SIOCGIFMTU(fd, name, &mtu) == 0 else {
            throw CaptureError(
                "cannot read the MTU of interface \(name): \(errnoText())",
                fix: "Check the interface's name (ip link) and that the probe runs in its network namespace."
            )
        }
        var aggregation: [String] = []
        if let features = features(fd, name) {
            aggregation = receiveAggregation(features)
        } else {
            // No feature names (a kernel before 2.6.39): the older commands, which know GRO and LRO only.
            var value: UInt32 = 0
            if CLinux_ioctl_SIOCETHTOOL_value(fd, name, CLinux_ETHTOOL_GGRO(), &value) == 0, value != 0 {
                aggregation.append("gro")
            }
            if CLinux_ioctl_SIOCETHTOOL_value(fd, name, CLinux_ETHTOOL_GFLAGS(), &value) == 0,
                value & CLinux_ETH_FLAG_LRO() != 0
            {
                aggregation.append("lro")
            }
        }
        return KernelInterface(name: name, mtu: Int(mtu), aggregation: aggregation)
    }

    /// The receive offloads among `features` (ethtool's feature names and whether each is active) that
    /// merge frames, by the names `ethtool -K` takes: `rx-gro` is `gro`, `rx-lro` is `lro`, and hardware
    /// GRO keeps its own name, `rx-gro-hw` (`ethtool -K IF gro off` leaves it on).
    package static func receiveAggregation(_ features: [String: Bool]) -> [String] {
        [("rx-gro", "gro"), ("rx-lro", "lro"), ("rx-gro-hw", "rx-gro-hw")].filter { features[$0.0] == true }.map(\.1)
    }

    /// Every netdev feature of the interface by ethtool's name (`ethtool -k`'s long list, e.g. `rx-gro-hw`)
    /// and whether it is active; nil when the kernel cannot say.
    package static func features(_ name: String) -> [String: Bool]? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return features(fd, name)
    }

    private static func features(_ fd: Int32, _ name: String) -> [String: Bool]? {
        var count: UInt32 = 0
        guard CLinux_ioctl_ETHTOOL_GSSET_INFO_features(fd, name, &count) == 0, count > 0 else { return nil }
        let length = Int(CLinux_ETH_GSTRING_LEN())
        var names = [CChar](repeating: 0, count: Int(count) * length)
        guard CLinux_ioctl_ETHTOOL_GSTRINGS_features(fd, name, count, &names) == 0 else { return nil }
        let words = (Int(count) + 31) / 32
        var active = [UInt32](repeating: 0, count: words)
        guard CLinux_ioctl_ETHTOOL_GFEATURES_active(fd, name, UInt32(words), &active) == 0 else { return nil }
        var features: [String: Bool] = [:]
        for index in 0..<Int(count) {
            let bytes = names[(index * length)..<((index + 1) * length)].prefix { $0 != 0 }
            let feature = String(decoding: bytes.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard !feature.isEmpty else { continue }
            features[feature] = active[index / 32] & (1 << UInt32(index % 32)) != 0
        }
        return features
    }

    /// The interface's index (0 when there is none by that name).
    package static func index(of name: String) -> Int { Int(if_nametoindex(name)) }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
