import CDPDK
import CLinux
import Glibc
import Synchronization

extension Port {
    /// A port's link and how long it has been quiet, as the sampler last read them.
    package struct Link: Sendable, Equatable {
        package var port: UInt16
        package var up: Bool
        /// Megabits per second; nil when the device does not say (or, on a kernel interface, has no carrier).
        package var speedMbps: UInt32?
        /// Seconds since the port last received a packet (since the sampler first read it, when none yet).
        package var idleSeconds: Double

        package init(port: UInt16, up: Bool, speedMbps: UInt32? = nil, idleSeconds: Double = 0) {
            self.port = port
            self.up = up
            self.speedMbps = speedMbps
            self.idleSeconds = idleSeconds
        }
    }
}

/// Reads each port's link for the sampler (never on an lcore, never in a hot
/// loop): DPDK's link state with `rte_eth_link_get_nowait`, which does not wait
/// for a NIC to finish negotiating; and, for a port on a kernel interface, the
/// interface's own state. DPDK 22.11's net_af_packet and net_pcap (like net_null
/// and net_ring) report their link up from the moment they start, whatever the
/// interface does; the interface is up with a carrier (IFF_UP and IFF_RUNNING) or
/// it is not, and its speed is ethtool's.
///
/// It also keeps, per port, when the port's received-packet counter last moved.
/// The link itself is read at most once per `readInterval` per port: the
/// sampler may run every millisecond (`--counter-trace-interval-ms`), and each
/// kernel-interface read is an ioctl that takes the kernel's rtnl lock.
/// Only the sampler calls it; the lock is never contended.
package final class PortLinks: Sendable {
    private struct Entry {
        /// The received-packet counter, and since when it has not moved.
        var received: UInt64
        var quietSince: Double
        /// The link as last read, and when.
        var link: Port.Link?
        var readAt = 0.0
    }

    /// Seconds a link read stays current.
    static let readInterval = 1.0

    private let entries = Mutex<[UInt16: Entry]>([:])
    /// A socket to ask the kernel about interfaces (-1: none could be opened).
    private let fd: Int32

    package init() {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Each port's link, given the packets each has received so far.
    package func sample(_ ports: [Port], received: [UInt64]) -> [Port.Link] {
        let now = Self.monotonicSeconds()
        return entries.withLock { entries in
            zip(ports, received).map { port, received in
                var entry = entries[port.id] ?? Entry(received: received, quietSince: now)
                if received != entry.received {
                    entry.received = received
                    entry.quietSince = now
                }
                var link: Port.Link
                if let last = entry.link, now - entry.readAt < Self.readInterval {
                    link = last
                } else {
                    link = read(port)
                    entry.link = link
                    entry.readAt = now
                }
                link.idleSeconds = max(0, now - entry.quietSince)
                entries[port.id] = entry
                return link
            }
        }
    }

    private func read(_ port: Port) -> Port.Link {
        var device = rte_eth_link()
        let known = rte_eth_link_get_nowait(port.id, &device) == 0
        var up = known && device.link_status == UInt16(RTE_ETH_LINK_UP)
        var speed: UInt32? =
            known && device.link_speed != 0 && device.link_speed != RTE_ETH_SPEED_NUM_UNKNOWN
            ? device.link_speed : nil
        if !port.path.interfaces.isEmpty, fd >= 0 {
            speed = nil
            for interface in port.path.interfaces {
                var flags: Int32 = 0
                let running =
                    CLinux_ioctl_SIOCGIFFLAGS(fd, interface.name, &flags) == 0
                    && flags & CLinux_IFF_UP() != 0 && flags & CLinux_IFF_RUNNING() != 0
                up = up && running
                var mbps: UInt32 = 0
                if running, CLinux_ioctl_ETHTOOL_GSET_speed(fd, interface.name, &mbps) == 0, mbps != 0,
                    mbps != CLinux_SPEED_UNKNOWN()
                {
                    speed = max(speed ?? 0, mbps)
                }
            }
        }
        return Port.Link(port: port.id, up: up, speedMbps: up ? speed : nil)
    }

    private static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
