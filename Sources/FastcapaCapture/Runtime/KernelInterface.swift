import CDPDK
import Glibc

/// A Linux network interface a port captures through the kernel (net_af_packet,
/// or net_pcap with `iface=`/`rx_iface=`): how long a frame it can hand a
/// packet socket.
package struct KernelInterface: Sendable, Equatable {
    package var name: String
    package var mtu: Int
    /// Receive offloads that merge frames into larger ones before any packet
    /// socket sees them (GRO, LRO), when they are on.
    package var aggregation: [String] = []

    /// The longest frame the interface hands a packet socket with no receive
    /// aggregation: its MTU, the Ethernet header and two VLAN tags (an 802.1ad
    /// pair; a Linux interface accepts the first tag beyond its MTU).
    package var largestFrame: Int { mtu + 14 + 8 }

    /// Reads the interface's MTU (SIOCGIFMTU) and receive aggregation (ethtool GRO and LRO).
    package static func read(_ name: String) throws(CaptureError) -> KernelInterface {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else {
            throw CaptureError("cannot open a socket to ask about interface \(name): \(errnoText())", fix: "")
        }
        defer { close(fd) }
        var mtu: Int32 = 0
        guard CDPDK_ioctl_SIOCGIFMTU(fd, name, &mtu) == 0 else {
            throw CaptureError(
                "cannot read the MTU of interface \(name): \(errnoText())",
                fix: "Check the interface's name (ip link) and that the probe runs in its network namespace."
            )
        }
        var aggregation: [String] = []
        var value: UInt32 = 0
        // A driver without ethtool support has neither offload: nothing to report.
        if CDPDK_ioctl_SIOCETHTOOL_value(fd, name, CDPDK_ETHTOOL_GGRO(), &value) == 0, value != 0 {
            aggregation.append("gro")
        }
        if CDPDK_ioctl_SIOCETHTOOL_value(fd, name, CDPDK_ETHTOOL_GFLAGS(), &value) == 0,
            value & CDPDK_ETH_FLAG_LRO() != 0
        {
            aggregation.append("lro")
        }
        return KernelInterface(name: name, mtu: Int(mtu), aggregation: aggregation)
    }

    /// The interface's index (0 when there is none by that name).
    package static func index(of name: String) -> Int { Int(if_nametoindex(name)) }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
