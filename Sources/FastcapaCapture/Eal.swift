import CDPDK
import Foundation

/// DPDK's Environment Abstraction Layer: initialised once per process.
public enum Eal {
    /// Initialises the EAL with `arguments` (without the program name).
    ///
    /// When the arguments give no `--file-prefix`, a per-process one is added so
    /// that two probes (or a probe and a test) never share runtime files, and
    /// `cleanup()` removes the runtime folder it made.
    public static func initialize(programName: String, arguments: [String]) throws(CaptureError) -> EalRuntime {
        var arguments = arguments
        // Before rte_eal_init pins this thread to the main lcore.
        let processCPUs = CPUAffinity.ofThisThread()
        var ownedPrefix: String?
        if !arguments.contains(where: { $0 == "--file-prefix" || $0.hasPrefix("--file-prefix=") }) {
            let prefix = "fastcapa-\(getpid())"
            arguments.append("--file-prefix=\(prefix)")
            ownedPrefix = prefix
        }
        // EAL keeps pointers into argv: these strings live for the process.
        let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: arguments.count + 2)
        argv[0] = strdup(programName)
        for (index, argument) in arguments.enumerated() { argv[index + 1] = strdup(argument) }
        argv[arguments.count + 1] = nil
        let parsed = rte_eal_init(Int32(arguments.count + 1), argv)
        if parsed < 0 {
            let code = cfc_errno()
            let runtime = EalRuntime(ownedPrefix: ownedPrefix, initialized: false, processCPUs: processCPUs)
            runtime.removeRuntimeFiles()
            throw CaptureError(
                "DPDK could not start (rte_eal_init: \(CaptureError.dpdkReason(code))) with EAL arguments '\(arguments.joined(separator: " "))'",
                fix: "Check the EAL options before '--' (DPDK prints the one it refused above); without hugepages use "
                    + "--no-huge --no-pci -m 512, and name virtual devices as --vdev=net_pcap0,rx_pcap=FILE or --vdev=net_null0.")
        }
        return EalRuntime(ownedPrefix: ownedPrefix, initialized: true, processCPUs: processCPUs)
    }
}

/// A running EAL; `cleanup()` releases it and its runtime files.
public final class EalRuntime: @unchecked Sendable {
    let ownedPrefix: String?
    private var initialized: Bool
    /// The CPUs the process could use when it started.
    public let processCPUs: [Int]

    init(ownedPrefix: String?, initialized: Bool, processCPUs: [Int]) {
        self.ownedPrefix = ownedPrefix
        self.initialized = initialized
        self.processCPUs = processCPUs
    }

    public func cleanup() {
        if initialized {
            rte_eal_cleanup()
            initialized = false
        }
        removeRuntimeFiles()
    }

    func removeRuntimeFiles() {
        guard let ownedPrefix else { return }
        // Where DPDK keeps them: /var/run/dpdk for root, else $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk.
        let base = getuid() == 0 ? "/var/run" : (ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] ?? "/tmp")
        let folder = "\(base)/dpdk/\(ownedPrefix)"
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Lcores available to workers (all enabled lcores but the main one).
    public var workerLcores: [UInt32] {
        var lcores: [UInt32] = []
        var lcore = cfc_next_worker_lcore(UInt32.max)
        while lcore < cfc_max_lcore() {
            lcores.append(lcore)
            lcore = cfc_next_worker_lcore(lcore)
        }
        return lcores
    }
}
