import CDPDK
import Foundation

/// DPDK's Environment Abstraction Layer: initialised once per process.
package enum Eal {
    /// The DPDK version fastcapa was built with, e.g. "DPDK 22.11.4".
    package static var version: String { String(cString: rte_version()) }

    /// Initialises the EAL with `arguments` (without the program name).
    ///
    /// When the arguments give no `--file-prefix`, a per-process one is added so
    /// that two probes (or a probe and a test) never share runtime files, and
    /// `cleanup()` removes the runtime folder it made.
    package static func initialize(programName: String, arguments: [String]) throws(CaptureError) -> EalRuntime {
        var arguments = arguments
        // Before rte_eal_init pins this thread to the main lcore.
        let processCPUs = CPUAffinity.ofThisThread()
        var ownedPrefix: String?
        let givenPrefix = Self.value(of: "--file-prefix", in: arguments)
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
            let code = CDPDK_rte_errno()
            let runtime = EalRuntime(
                ownedPrefix: ownedPrefix,
                filePrefix: givenPrefix ?? ownedPrefix ?? "",
                sharedMemory: false,
                initialized: false,
                processCPUs: processCPUs
            )
            runtime.removeRuntimeFiles()
            throw CaptureError(
                "DPDK could not start (rte_eal_init: \(CaptureError.dpdkReason(code))) with EAL arguments '\(arguments.joined(separator: " "))'",
                fix: "Check the EAL options before '--' (DPDK prints the one it refused above); without hugepages use "
                    + "--no-huge --no-pci -m 512, and name virtual devices as --vdev=net_pcap0,rx_pcap=FILE or --vdev=net_null0."
            )
        }
        // Secondary processes (dpdk-dumpcap) can attach only to hugepage memory shared through files.
        let shared = !arguments.contains { ["--no-huge", "--in-memory", "--no-shconf"].contains($0) }
        return EalRuntime(
            ownedPrefix: ownedPrefix,
            filePrefix: givenPrefix ?? ownedPrefix ?? "",
            sharedMemory: shared,
            initialized: true,
            processCPUs: processCPUs
        )
    }

    /// The value of `--name VALUE` or `--name=VALUE`.
    static func value(of name: String, in arguments: [String]) -> String? {
        for (index, argument) in arguments.enumerated() {
            if argument.hasPrefix(name + "=") { return String(argument.dropFirst(name.count + 1)) }
            if argument == name, index + 1 < arguments.count { return arguments[index + 1] }
        }
        return nil
    }
}

/// A running EAL; `cleanup()` releases it and its runtime files.
package final class EalRuntime: @unchecked Sendable {
    let ownedPrefix: String?
    /// The runtime files' prefix: the one given, or the per-process one fastcapa chose.
    package let filePrefix: String
    /// Memory a secondary process can map (hugepages, shared config): what dpdk-dumpcap needs.
    package let sharedMemory: Bool
    private var packetDump = false
    private var initialized: Bool
    /// The CPUs the process could use when it started.
    package let processCPUs: [Int]

    init(ownedPrefix: String?, filePrefix: String, sharedMemory: Bool, initialized: Bool, processCPUs: [Int]) {
        self.ownedPrefix = ownedPrefix
        self.filePrefix = filePrefix
        self.sharedMemory = sharedMemory
        self.initialized = initialized
        self.processCPUs = processCPUs
    }

    /// Lets `dpdk-dumpcap --file-prefix=PREFIX -i PORT` watch the ports while the
    /// probe runs (rte_pdump: the primary answers the secondary's requests and,
    /// while one is attached, copies each received packet to it in the receive
    /// burst). Returns how an operator attaches, or why it cannot.
    package func enablePacketDump() -> String {
        guard sharedMemory else {
            return
                "dpdk-dumpcap cannot attach: EAL runs with --no-huge, --in-memory or --no-shconf (no memory to share)"
        }
        let status = rte_pdump_init()
        guard status == 0 else {
            return "dpdk-dumpcap cannot attach: rte_pdump_init failed (\(CaptureError.dpdkReason()))"
        }
        packetDump = true
        return "dpdk-dumpcap can watch the ports: dpdk-dumpcap --file-prefix=\(filePrefix) -i PORT -w FILE"
    }

    package func cleanup() {
        if packetDump {
            rte_pdump_uninit()
            packetDump = false
        }
        if initialized {
            rte_eal_cleanup()
            initialized = false
        }
        removeRuntimeFiles()
    }

    /// This run's DPDK runtime folder, when fastcapa chose its prefix.
    package var runtimeFolder: String? {
        guard let ownedPrefix else { return nil }
        // Where DPDK keeps them: /var/run/dpdk for root, else $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk.
        let base = getuid() == 0 ? "/var/run" : (ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] ?? "/tmp")
        return "\(base)/dpdk/\(ownedPrefix)"
    }

    package func removeRuntimeFiles() {
        guard let runtimeFolder else { return }
        try? FileManager.default.removeItem(atPath: runtimeFolder)
    }

    /// Lcores available to workers (all enabled lcores but the main one).
    package var workerLcores: [UInt32] {
        // RTE_LCORE_FOREACH_WORKER: every enabled lcore but the main one.
        var lcores: [UInt32] = []
        var lcore = rte_get_next_lcore(UInt32.max, 1, 0)
        while lcore < RTE_MAX_LCORE {
            lcores.append(lcore)
            lcore = rte_get_next_lcore(lcore, 1, 0)
        }
        return lcores
    }
}
