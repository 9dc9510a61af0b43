import FastcapaCapture
import FastcapaTestSupport
import Foundation
import Testing

@testable import FastcapaCLI

/// `fastcapa check`'s host checks against fake /sys and /proc trees: each check
/// passes on a host set up as Deployment.md says and fails, with the command
/// that fixes it, on one that is not.
@Suite struct HostCheckTests {
    /// A fake root: files written relative to it, symbolic links for drivers and groups.
    struct Tree {
        let root = TestFiles.temporaryDirectory()

        func write(_ path: String, _ text: String) throws {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            try text.write(to: url, atomically: true, encoding: .utf8)
        }

        func link(_ path: String, to target: String) throws {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            try FileManager.default.createSymbolicLink(atPath: url.path, withDestinationPath: target)
        }

        func folder(_ path: String) throws {
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent(path),
                withIntermediateDirectories: true
            )
        }

        func check(_ eal: [String], settings: CaptureSettings = CaptureSettings()) -> HostCheck {
            HostCheck(eal: eal, settings: settings, root: root.path)
        }

        /// 2 MB pages: `total` reserved, `free` of them free, mounted at /dev/hugepages (or not).
        func hugepages(total: Int, free: Int, mounted: Bool = true) throws {
            try write("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "\(total)\n")
            try write("sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "\(free)\n")
            try write("sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "0\n")
            try write("sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages", "0\n")
            try write("proc/meminfo", "MemTotal:       8000000 kB\nHugepagesize:       2048 kB\n")
            try write(
                "proc/mounts",
                "sysfs /sys sysfs rw 0 0\n"
                    + (mounted ? "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n" : "")
            )
        }
    }

    static let nic = "0000:3b:00.0"

    static func outcome(_ results: [(String, CheckRun.Outcome)], _ what: String) -> (kind: String, text: String)? {
        guard let found = results.first(where: { $0.0 == what })?.1 else { return nil }
        switch found {
        case .ok(let text): return ("ok", text)
        case .warning(let text): return ("warning", text)
        case .failed(let text): return ("failed", text)
        }
    }

    @Test func hugepagesReservedAndMountedPass() throws {
        let tree = Tree()
        try tree.hugepages(total: 1024, free: 1024)
        let check = tree.check(["-l", "0-2", "-a", Self.nic])
        let found = try #require(Self.outcome(check.hugepages(), "hugepages"))
        #expect(found.kind == "ok", "\(found.text)")
        #expect(found.text.contains("1024 of 2 MB (1024 free) on /dev/hugepages"), "\(found.text)")
        #expect(found.text.contains("the packet pools need \((check.poolBytes + (1 << 20) - 1) >> 20) MB"))
    }

    /// The flow tables and duplicate windows come out of the same hugepages: a cutoff on two queues with the
    /// default tables (about 121 and 16 MiB each) needs that much more than the packet pools.
    @Test func theFlowAndDuplicateTablesCountInTheHugepagesNeeded() throws {
        let tree = Tree()
        // Room for the packet pools and 64 MB more, not for the tables.
        let poolMegabytes = (tree.check(["-l", "0-4"]).poolBytes + (1 << 20) - 1) >> 20
        try tree.hugepages(total: (poolMegabytes + 64) / 2, free: (poolMegabytes + 64) / 2)
        let plain = try #require(Self.outcome(tree.check(["-l", "0-4"]).hugepages(), "hugepages"))
        #expect(plain.kind == "ok" && plain.text.contains("the packet pools need"), "\(plain.text)")
        var settings = CaptureSettings()
        settings.rxQueues = 2
        settings.flowCutoffPackets = 20
        settings.dedupWindowMicros = 500
        let check = tree.check(["-l", "0-4"], settings: settings)
        let tables =
            2 * FlowTable.approximateBytes(capacity: 1_048_576) + 2
            * DuplicateWindow.approximateBytes(entries: 1_048_576)
        #expect(check.tableBytes == tables)
        let found = try #require(Self.outcome(check.hugepages(), "hugepages"))
        #expect(found.kind == "failed", "\(found.text)")
        let need = (check.poolBytes + tables + (1 << 20) - 1) >> 20
        #expect(
            found.text.contains("the packet pools and the flow and duplicate tables need \(need) MB"),
            "\(found.text)"
        )
    }

    @Test func noHugepagesFailsWithTheLineThatReservesThem() throws {
        let tree = Tree()
        try tree.hugepages(total: 0, free: 0)
        let found = try #require(Self.outcome(tree.check(["-l", "0-2"]).hugepages(), "hugepages"))
        #expect(found.kind == "failed")
        #expect(found.text.contains("none reserved") && found.text.contains("/etc/sysctl.d/80-fastcapa.conf"))
        #expect(!found.text.contains("GRUB"), "one fix: 2 MB pages for a small need")
        // A gigabyte or more: 1 GB pages on the kernel command line, the one fix.
        let large = try #require(Self.outcome(tree.check(["--socket-mem", "2048"]).hugepages(), "hugepages"))
        #expect(large.kind == "failed" && large.text.contains("hugepagesz=1G hugepages=3 to GRUB_CMDLINE_LINUX"))
        #expect(!large.text.contains("sysctl"), "\(large.text)")
    }

    @Test func unmountedHugepagesFailWithTheFstabLine() throws {
        let tree = Tree()
        try tree.hugepages(total: 1024, free: 1024, mounted: false)
        let found = try #require(Self.outcome(tree.check(["-l", "0-2"]).hugepages(), "hugepages"))
        #expect(found.kind == "failed")
        #expect(found.text.contains("'nodev /dev/hugepages hugetlbfs mode=01770 0 0'"), "\(found.text)")
        // A --huge-dir that is not one of the mounts is named.
        try tree.hugepages(total: 1024, free: 1024)
        let elsewhere = try #require(
            Self.outcome(tree.check(["--huge-dir", "/dev/hugepages1G"]).hugepages(), "hugepages")
        )
        #expect(elsewhere.kind == "failed" && elsewhere.text.contains("--huge-dir /dev/hugepages1G is not a hugetlbfs"))
    }

    /// The pools of a large ring need more than a few pages; memory another process holds is a warning.
    @Test func tooFewHugepagesFailAndHeldOnesWarn() throws {
        let tree = Tree()
        var settings = CaptureSettings()
        settings.ringSize = 65536
        settings.rxQueues = 2
        try tree.hugepages(total: 64, free: 64)
        let check = tree.check(["-l", "0-4"], settings: settings)
        #expect(check.poolBytes > 128 << 20, "two rings of 65,536 packets need hundreds of MB")
        let few = try #require(Self.outcome(check.hugepages(), "hugepages"))
        #expect(few.kind == "failed" && few.text.contains("vm.nr_hugepages = "), "\(few.text)")
        try tree.hugepages(total: 1024, free: 10)
        let held = try #require(Self.outcome(check.hugepages(), "hugepages"))
        #expect(held.kind == "warning" && held.text.contains("another process holds the rest"), "\(held.text)")
        // vm.nr_hugepages counts default-size pages: with 1 GB the default, 2 MB pages go through dpdk.conf.
        try tree.hugepages(total: 64, free: 64)
        try tree.write("proc/meminfo", "Hugepagesize:    1048576 kB\n")
        let bySize = try #require(Self.outcome(check.hugepages(), "hugepages"))
        #expect(bySize.kind == "failed" && bySize.text.contains("NR_2M_PAGES="), "\(bySize.text)")
        // --socket-mem beyond what is reserved fails too: EAL could not take it.
        try tree.hugepages(total: 1024, free: 1024)
        let asked = try #require(Self.outcome(tree.check(["--socket-mem", "4096"]).hugepages(), "hugepages"))
        #expect(asked.kind == "failed" && asked.text.contains("EAL is asked for 4096 MB"), "\(asked.text)")
    }

    @Test func noHugeSaysHugepagesAreNotUsed() throws {
        let tree = Tree()
        let found = try #require(Self.outcome(tree.check(["--no-huge", "-m", "512"]).hugepages(), "hugepages"))
        #expect(found.kind == "ok" && found.text.hasPrefix("not used (--no-huge)"), "\(found.text)")
        var settings = CaptureSettings()
        settings.ringSize = 1 << 20
        let small = try #require(
            Self.outcome(tree.check(["--no-huge", "-m", "64"], settings: settings).hugepages(), "hugepages")
        )
        #expect(small.kind == "failed" && small.text.contains("-m 64 MB cannot hold"), "\(small.text)")
    }

    @Test func aPortBoundToVfioWithAnIommuPasses() throws {
        let tree = Tree()
        try tree.folder("sys/bus/pci/devices/\(Self.nic)")
        try tree.write("sys/bus/pci/devices/\(Self.nic)/numa_node", "0\n")
        try tree.link("sys/bus/pci/devices/\(Self.nic)/driver", to: "../../../bus/pci/drivers/vfio-pci")
        try tree.link("sys/bus/pci/devices/\(Self.nic)/iommu_group", to: "../../../kernel/iommu_groups/42")
        try tree.folder("sys/kernel/iommu_groups/42")
        // The short form of the address, with device arguments, is the same device.
        let results = tree.check(["-l", "0-2", "-a", "3b:00.0,rxq_cqe_comp_en=0"]).devices()
        let device = try #require(Self.outcome(results, "device \(Self.nic)"))
        #expect(device.kind == "ok" && device.text == "bound to vfio-pci, NUMA node 0, IOMMU group 42")
        let iommu = try #require(Self.outcome(results, "IOMMU"))
        #expect(iommu.kind == "ok" && iommu.text.hasPrefix("on (1 IOMMU group)"), "\(iommu.text)")
    }

    @Test func aPortOnItsKernelDriverFailsWithTheBindCommand() throws {
        let tree = Tree()
        try tree.folder("sys/bus/pci/devices/\(Self.nic)")
        try tree.link("sys/bus/pci/devices/\(Self.nic)/driver", to: "../../../bus/pci/drivers/ixgbe")
        try tree.folder("sys/kernel/iommu_groups/7")
        let results = tree.check(["-a", Self.nic]).devices()
        let device = try #require(Self.outcome(results, "device \(Self.nic)"))
        #expect(device.kind == "failed" && device.text.contains("bound to the kernel driver ixgbe"))
        #expect(device.text.contains("driverctl set-override \(Self.nic) vfio-pci"), "\(device.text)")
        // Unbound, the same fix; a missing device is named as such.
        let unbound = Tree()
        try unbound.folder("sys/bus/pci/devices/\(Self.nic)")
        let none = try #require(Self.outcome(unbound.check(["-a", Self.nic]).devices(), "device \(Self.nic)"))
        #expect(none.kind == "failed" && none.text.hasPrefix("bound to no driver"), "\(none.text)")
        let missing = try #require(
            Self.outcome(unbound.check(["-a", "0000:af:00.1"]).devices(), "device 0000:af:00.1")
        )
        #expect(missing.kind == "failed" && missing.text.contains("no such PCI device"), "\(missing.text)")
        // mlx5 stays on its kernel driver.
        let mellanox = Tree()
        try mellanox.folder("sys/bus/pci/devices/\(Self.nic)")
        try mellanox.link("sys/bus/pci/devices/\(Self.nic)/driver", to: "../../../bus/pci/drivers/mlx5_core")
        let results5 = mellanox.check(["-a", Self.nic]).devices()
        #expect(Self.outcome(results5, "device \(Self.nic)")?.kind == "ok")
        #expect(Self.outcome(results5, "IOMMU") == nil, "no vfio-pci, no IOMMU check")
    }

    @Test func vfioWithoutAnIommuFailsWithTheKernelParameters() throws {
        let tree = Tree()
        try tree.folder("sys/bus/pci/devices/\(Self.nic)")
        try tree.link("sys/bus/pci/devices/\(Self.nic)/driver", to: "../../../bus/pci/drivers/vfio-pci")
        try tree.folder("sys/kernel/iommu_groups")
        try tree.write("proc/cpuinfo", "vendor_id\t: GenuineIntel\n")
        let off = try #require(Self.outcome(tree.check(["-a", Self.nic]).devices(), "IOMMU"))
        #expect(off.kind == "failed" && off.text.contains("intel_iommu=on iommu=pt"), "\(off.text)")
        #expect(off.text.contains("GRUB_CMDLINE_LINUX"))
        try tree.write("proc/cpuinfo", "vendor_id\t: AuthenticAMD\n")
        let amd = try #require(Self.outcome(tree.check(["-a", Self.nic]).devices(), "IOMMU"))
        #expect(amd.text.contains("amd_iommu=on iommu=pt"), "\(amd.text)")
        try tree.write("sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "Y\n")
        let unsafe = try #require(Self.outcome(tree.check(["-a", Self.nic]).devices(), "IOMMU"))
        #expect(unsafe.kind == "warning" && unsafe.text.contains("no-IOMMU mode"), "\(unsafe.text)")
    }

    @Test func virtualDevicesNeedNoBinding() throws {
        let tree = Tree()
        let results = tree.check(["--no-huge", "--no-pci", "--vdev=net_null0"]).devices()
        #expect(results.count == 1 && Self.outcome(results, "PCI devices")?.kind == "ok")
        let unnamed = try #require(Self.outcome(tree.check(["-l", "0-2"]).devices(), "PCI devices"))
        #expect(unnamed.kind == "warning" && unnamed.text.contains("-a ADDRESS"))
    }

    @Test func isolatedWorkerCPUsPassAndOthersWarn() throws {
        let tree = Tree()
        var settings = CaptureSettings()
        settings.rxQueues = 2
        try tree.write("sys/devices/system/cpu/isolated", "1-4\n")
        try tree.write("sys/devices/system/cpu/nohz_full", "1-4\n")
        let check = tree.check(["-l", "0-4"], settings: settings)
        let isolated = check.cpus(workerCPUs: [1, 2, 3, 4], controlCPUs: [0, 5, 6, 7], processCPUs: Array(0...7))
        let good = try #require(Self.outcome(isolated, "lcores"))
        #expect(good.kind == "ok" && good.text.contains("CPUs 1-4 are isolated"), "\(good.text)")
        #expect(good.text.contains("recommends -l 0-4 with isolcpus=1-4 nohz_full=1-4 rcu_nocbs=1-4"), "\(good.text)")
        #expect(Self.outcome(isolated, "control cores") == nil)

        // Isolated without nohz_full: the tick is still there.
        try tree.write("sys/devices/system/cpu/nohz_full", "(null)\n")
        let ticking = try #require(
            Self.outcome(check.cpus(workerCPUs: [1, 2, 3, 4], controlCPUs: [0], processCPUs: Array(0...7)), "lcores")
        )
        #expect(ticking.kind == "warning" && ticking.text.contains("nohz_full=1-4 rcu_nocbs=1-4"), "\(ticking.text)")
        // A kernel without NO_HZ_FULL has no such file: isolation is all it can give.
        try FileManager.default.removeItem(at: tree.root.appendingPathComponent("sys/devices/system/cpu/nohz_full"))
        let noTickless = check.cpus(workerCPUs: [1, 2, 3, 4], controlCPUs: [0], processCPUs: Array(0...7))
        #expect(Self.outcome(noTickless, "lcores")?.kind == "ok")

        // Nothing isolated (this machine): a warning, with the kernel parameters for the CPUs in use.
        try tree.write("sys/devices/system/cpu/isolated", "\n")
        let shared = check.cpus(workerCPUs: [1, 1, 1, 1], controlCPUs: [0], processCPUs: [0, 1])
        let warning = try #require(Self.outcome(shared, "lcores"))
        #expect(
            warning.kind == "warning" && warning.text.contains("isolcpus=1 nohz_full=1 rcu_nocbs=1"),
            "\(warning.text)"
        )
        #expect(warning.text.contains("--lcores '0@0,1@1,2@1,3@1,4@1'"), "\(warning.text)")

        // Control threads confined to isolated CPUs pile up on one.
        try tree.write("sys/devices/system/cpu/isolated", "0-4\n")
        let crowded = check.cpus(workerCPUs: [1, 2, 3, 4], controlCPUs: [0], processCPUs: Array(0...4))
        #expect(Self.outcome(crowded, "control cores")?.kind == "warning")
    }

    /// nic.yaml's `-l 0-4` on a 2-CPU host: EAL would refuse lcores 2-4; check names the layout that fits.
    @Test func anLcoreListBeyondTheHostsCPUsFailsWithTheLayoutThatFits() throws {
        var settings = CaptureSettings()
        settings.rxQueues = 2
        let check = HostCheck(eal: ["-l", "0-4", "-a", Self.nic], settings: settings)
        let small = try #require(Self.outcome(check.lcoreList(processCPUs: [0, 1]), "lcores"))
        #expect(small.kind == "failed" && small.text.contains("names CPUs 2-4"), "\(small.text)")
        #expect(small.text.contains("Give --lcores '0@0,1@1,2@1,3@1,4@1' in the eal: list"), "\(small.text)")
        #expect(check.lcoreList(processCPUs: Array(0..<8)).isEmpty, "a host with the CPUs: nothing to say")
        #expect(HostCheck(eal: ["--lcores", "0@0,1@1"], settings: settings).lcoreList(processCPUs: [0]).isEmpty)
    }

    @Test func ealValuesAreReadInEveryForm() {
        let eal = [
            "-a", "0000:01:00.0", "-a0000:02:00.0", "--allow=03:00.0", "--allow", "0000:04:00.1,x=1", "-l", "0-2",
        ]
        #expect(
            HostCheck(eal: eal, settings: CaptureSettings()).allowedDevices == [
                "0000:01:00.0", "0000:02:00.0", "0000:03:00.0", "0000:04:00.1",
            ]
        )
        #expect(HostCheck.cpuList("1-4,6") == [1, 2, 3, 4, 6] && HostCheck.cpuList("(null)") == [])
        #expect(HostCheck.kilobytes("1048576kB") == 1 << 20 && HostCheck.kilobytes("2M") == 2048)
    }
}
