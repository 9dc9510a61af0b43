import CDPDK
import CLinux
import Glibc

/// The CPUs threads may run on, read and set through glibc's cpu_set_t.
enum CPUAffinity {
    /// CPU numbers run from 0 to this, exclusive.
    static var setSize: Int { Int(CLinux_CPU_SETSIZE()) }

    /// The CPUs the calling thread may run on ([] if they cannot be read).
    static func ofThisThread() -> [Int] {
        var set = cpu_set_t()
        guard CLinux_pthread_getaffinity_np(&set) == 0 else { return [] }
        return cpus(in: set)
    }

    /// The CPUs EAL pinned `lcore` to.
    static func of(lcore: UInt32) -> [Int] {
        var set = cpu_set_t()
        CDPDK_rte_lcore_cpuset(lcore, &set)
        return cpus(in: set)
    }

    /// Confines the calling thread (and the threads it creates from now on) to
    /// `cpus`. Returns 0 or an errno value.
    static func confineThisThread(to cpus: [Int]) -> Int32 {
        var set = cpu_set_t()
        CLinux_CPU_ZERO(&set)
        for cpu in cpus {
            guard (0..<setSize).contains(cpu) else { return EINVAL }
            CLinux_CPU_SET(Int32(cpu), &set)
        }
        return CLinux_pthread_setaffinity_np(&set)
    }

    static func cpus(in set: cpu_set_t) -> [Int] {
        var set = set
        return (0..<setSize).filter { CLinux_CPU_ISSET(Int32($0), &set) }
    }
}

extension EalRuntime {
    /// The CPUs EAL pinned `lcore` to.
    package func cpus(ofLcore lcore: UInt32) -> [Int] { CPUAffinity.of(lcore: lcore) }
}
