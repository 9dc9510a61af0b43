import FastcapaCapture
import Foundation

/// The host under a capture, as `fastcapa check` reads it from /sys and /proc:
/// hugepages, the PCI ports' drivers, the IOMMU and the isolated CPUs. Every
/// reading goes through `root`, so tests point it at a tree of their own.
///
/// What stops a capture is a failure (no hugepages, a port on a kernel driver,
/// vfio-pci without an IOMMU); what only costs packets under load is a warning
/// (CPUs not isolated, hugepages held by another process), so `check`'s exit
/// status keeps meaning "a capture would start".
struct HostCheck {
    typealias Outcome = CheckRun.Outcome

    /// The EAL arguments of the capture (the configuration's, not check's own).
    let eal: [String]
    let settings: CaptureSettings
    var root = "/"

    /// Drivers DPDK's PCI drivers take a device from.
    static let dpdkDrivers: Set<String> = ["vfio-pci", "uio_pci_generic", "igb_uio"]
    /// Kernel drivers that DPDK's own driver works beside (bifurcated).
    static let bifurcatedDrivers: Set<String> = ["mlx5_core", "mlx4_core"]

    // MARK: Reading the tree

    private func path(_ relative: String) -> String { (root as NSString).appendingPathComponent(relative) }

    private func read(_ relative: String) -> String? {
        (try? String(contentsOfFile: path(relative), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func entries(_ relative: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path(relative))) ?? []).sorted()
    }

    private func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: path(relative)) }

    /// The last component of a symbolic link's target (a device's `driver`, `iommu_group`).
    private func linkName(_ relative: String) -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: path(relative))).map {
            ($0 as NSString).lastPathComponent
        }
    }

    // MARK: EAL arguments

    /// Every value of an option given as `-a X`, `-aX`, `--allow X` or `--allow=X`.
    static func values(of names: [String], in arguments: [String]) -> [String] {
        var found: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            for name in names {
                if argument == name, index < arguments.count {
                    found.append(arguments[index])
                    index += 1
                    break
                }
                if name.hasPrefix("--"), argument.hasPrefix(name + "=") {
                    found.append(String(argument.dropFirst(name.count + 1)))
                    break
                }
                if !name.hasPrefix("--"), argument.count > name.count, argument.hasPrefix(name) {
                    found.append(String(argument.dropFirst(name.count)))
                    break
                }
            }
        }
        return found
    }

    private var noHuge: Bool { eal.contains("--no-huge") }
    private var noPCI: Bool { eal.contains("--no-pci") }

    /// The PCI addresses given with `-a`/`--allow`, in sysfs's form (domain included, device arguments left out).
    var allowedDevices: [String] {
        Self.values(of: ["-a", "--allow", "-w", "--pci-whitelist"], in: eal).map { value in
            let address = String(value.prefix { $0 != "," }).lowercased()
            return address.wholeMatch(of: /[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]/) != nil ? "0000:" + address : address
        }
    }

    /// Megabytes EAL is told to take: `-m`, or the sum of `--socket-mem`'s list.
    private var requestedMegabytes: Int? {
        if let total = Self.values(of: ["-m"], in: eal).last.flatMap({ Int($0) }) { return total }
        guard let list = Self.values(of: ["--socket-mem"], in: eal).last else { return nil }
        return list.split(separator: ",").compactMap { Int($0) }.reduce(0, +)
    }

    // MARK: Hugepages

    /// What the capture's pools and rings take: one pool per port (`MempoolSizing`, as the
    /// capture sizes it for a NIC) and a ring of pointers per queue. EAL's own needs come on top.
    var poolBytes: Int {
        let ports = max(settings.ports.count, 1)
        let sizing = MempoolSizing(settings: settings, ports: 1, lcores: settings.workerLcoresNeeded / ports + 1)
        return ports * sizing.bytes + ports * settings.rxQueues * settings.ringSize * 8
    }

    /// What the flow tables and duplicate windows take, one of each per receive queue when they are on.
    var tableBytes: Int {
        let queues = settings.ports.count * settings.rxQueues
        var bytes = 0
        if settings.flowCutoff != nil { bytes += queues * FlowTable.approximateBytes(capacity: settings.flowTableSize) }
        if settings.dedupWindowMicros > 0 {
            let entries = DuplicateWindow.roundedEntries(settings.dedupTableSize)
            bytes += queues * DuplicateWindow.approximateBytes(entries: entries)
        }
        return bytes
    }

    /// What the memory is needed for, in the hugepages line.
    private var needs: String {
        tableBytes == 0 ? "the packet pools" : "the packet pools and the flow and duplicate tables"
    }

    private static func megabytes(_ bytes: Int) -> Int { (bytes + (1 << 20) - 1) >> 20 }

    /// Page sizes in kB, from `hugepages-2048kB` names or a mount's `pagesize=2M`.
    static func kilobytes(_ text: String) -> Int? {
        let digits = text.prefix { $0.isNumber }
        guard let number = Int(digits) else { return nil }
        switch text.dropFirst(digits.count).lowercased() {
        case "kb", "k": return number
        case "mb", "m": return number << 10
        case "gb", "g": return number << 20
        default: return nil
        }
    }

    private static func pageName(_ kilobytes: Int) -> String {
        kilobytes >= 1 << 20
            ? "\(kilobytes >> 20) GB" : kilobytes >= 1 << 10 ? "\(kilobytes >> 10) MB" : "\(kilobytes) kB"
    }

    /// Reserving `pages` 2 MB pages now and at each boot: vm.nr_hugepages counts pages of the default size,
    /// so on a host whose default is 1 GB, Debian's dpdk.service reserves them by size instead.
    static func smallPagesFix(pages: Int, defaultSize: Int) -> String {
        defaultSize == 2048
            ? "echo 'vm.nr_hugepages = \(pages)' > /etc/sysctl.d/80-fastcapa.conf && sysctl --system"
            : "put NR_2M_PAGES=\(pages) in /etc/dpdk/dpdk.conf, then systemctl restart dpdk"
    }

    func hugepages() -> [(String, Outcome)] {
        let need = Self.megabytes(poolBytes + tableBytes)
        if noHuge {
            let memory = requestedMegabytes ?? 64
            guard need <= memory else {
                return [
                    (
                        "hugepages",
                        .failed(
                            "not used (--no-huge), and -m \(memory) MB cannot hold \(needs) (\(need) MB). Give EAL -m \(need + 64)"
                        )
                    )
                ]
            }
            return [
                (
                    "hugepages",
                    .ok(
                        "not used (--no-huge): EAL takes -m \(memory) MB of ordinary memory, \(needs) need \(need) MB (for tests and virtual devices; a NIC at line rate needs hugepages)"
                    )
                )
            ]
        }
        // Page size (kB) → pages reserved, free.
        var reserved: [Int: (total: Int, free: Int)] = [:]
        for name in entries("sys/kernel/mm/hugepages") where name.hasPrefix("hugepages-") {
            guard let size = Self.kilobytes(String(name.dropFirst("hugepages-".count))) else { continue }
            let total = read("sys/kernel/mm/hugepages/\(name)/nr_hugepages").flatMap { Int($0) } ?? 0
            let free = read("sys/kernel/mm/hugepages/\(name)/free_hugepages").flatMap { Int($0) } ?? 0
            reserved[size] = (total, free)
        }
        let defaultSize =
            read("proc/meminfo")?.split(separator: "\n").first { $0.hasPrefix("Hugepagesize:") }
            .flatMap { line in line.split(separator: " ").dropFirst().first.flatMap { Int($0) } } ?? 2048
        // Mount point → page size (kB).
        var mounts: [(path: String, size: Int)] = []
        for line in (read("proc/mounts") ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 4, fields[2] == "hugetlbfs" else { continue }
            let option = fields[3].split(separator: ",").first { $0.hasPrefix("pagesize=") }
            let size = option.flatMap { Self.kilobytes(String($0.dropFirst("pagesize=".count))) } ?? defaultSize
            mounts.append((String(fields[1]), size))
        }
        let hugeDir = Self.values(of: ["--huge-dir"], in: eal).last
        let usable = hugeDir.map { dir in mounts.filter { $0.path == dir } } ?? mounts
        var results: [(String, Outcome)] = []
        let requested = requestedMegabytes ?? 0
        let needed = max(need, requested)
        let total = reserved.values.reduce(0) { $0 + $1.total }
        guard total > 0 else {
            // A gigabyte or more in 1 GB pages (reserved at boot only); less in 2 MB pages (now and at each boot).
            let gigabytePages = needed >= 1024 && reserved[1 << 20] != nil
            let fix =
                gigabytePages
                ? "Add default_hugepagesz=1G hugepagesz=1G hugepages=\((needed + 1023) / 1024 + 1) to GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot"
                : Self.smallPagesFix(pages: (needed + 128) / 2, defaultSize: defaultSize)
            let asked = requested > 0 ? ", EAL is asked for \(requested) MB" : ""
            return [
                (
                    "hugepages",
                    .failed(
                        "none reserved; \(needs) need \(need) MB\(asked). \(fix) (Deployment.md, \"Hugepages\")"
                    )
                )
            ]
        }
        guard !usable.isEmpty else {
            let size = reserved.filter { $0.value.total > 0 }.keys.max() ?? defaultSize
            let gigabyte = size >= 1 << 20
            let dir = hugeDir ?? (gigabyte ? "/dev/hugepages1G" : "/dev/hugepages")
            let option = gigabyte ? ",pagesize=1G" : ""
            return [
                (
                    "hugepages",
                    .failed(
                        "\(hugeDir.map { "--huge-dir \($0) is not a hugetlbfs mount" } ?? "no hugetlbfs is mounted"): EAL finds no hugepages. Add the /etc/fstab line 'nodev \(dir) hugetlbfs mode=01770\(option) 0 0', then mkdir -p \(dir) && mount \(dir)"
                    )
                )
            ]
        }
        // EAL takes pages of the mounted sizes only.
        let sizes = Set(usable.map(\.size))
        let mountedBytes = sizes.reduce(0) { $0 + (reserved[$1]?.total ?? 0) * $1 * 1024 }
        let freeBytes = sizes.reduce(0) { $0 + (reserved[$1]?.free ?? 0) * $1 * 1024 }
        let summary =
            sizes.sorted().map { size in
                let pages = reserved[size] ?? (0, 0)
                return "\(pages.total) of \(Self.pageName(size)) (\(pages.free) free)"
            }
            .joined(separator: ", ") + " on \(usable.map(\.path).joined(separator: ", "))"
        let pools = "\(needs) need \(need) MB\(requested > 0 ? ", EAL is asked for \(requested) MB" : "")"
        if Self.megabytes(mountedBytes) < needed {
            let largest = sizes.max() ?? defaultSize
            let pages = (needed * 1024 + largest - 1) / largest + 1
            let fix =
                largest >= 1 << 20
                ? "raise hugepages= to \(pages) on the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot)"
                : Self.smallPagesFix(pages: pages, defaultSize: defaultSize)
            results.append(
                ("hugepages", .failed("\(summary): \(Self.megabytes(mountedBytes)) MB, but \(pools). Fix: \(fix)"))
            )
        } else if Self.megabytes(freeBytes) < needed {
            results.append(
                (
                    "hugepages",
                    .warning(
                        "\(summary): enough reserved for \(pools), but only \(Self.megabytes(freeBytes)) MB free: another process holds the rest (a running probe: stop it before starting another; DPDK files left by a killed one: Troubleshooting.md)"
                    )
                )
            )
        } else {
            results.append(("hugepages", .ok("\(summary); \(pools) (EAL takes some more for itself)")))
        }
        return results
    }

    // MARK: Ports and the IOMMU

    /// Each `-a` device's driver, then the IOMMU when vfio-pci is or will be used.
    func devices() -> [(String, Outcome)] {
        if noPCI {
            return [("PCI devices", .ok("none (--no-pci): virtual devices only"))]
        }
        let devices = allowedDevices
        guard !devices.isEmpty else {
            return [
                (
                    "PCI devices",
                    .warning(
                        "no -a/--allow given: DPDK takes every device bound to a DPDK driver (dpdk-devbind.py --status). Name the capture's NIC with -a ADDRESS in the eal: list"
                    )
                )
            ]
        }
        var results: [(String, Outcome)] = []
        var vfio = false
        for address in devices {
            let what = "device \(address)"
            let device = "sys/bus/pci/devices/\(address)"
            guard exists(device) else {
                results.append(
                    (
                        what,
                        .failed(
                            "no such PCI device on this host. dpdk-devbind.py --status-dev net lists the network devices: put yours in the eal: list's -a"
                        )
                    )
                )
                continue
            }
            let driver = linkName("\(device)/driver")
            let node = read("\(device)/numa_node").flatMap { Int($0) }.map { $0 >= 0 ? ", NUMA node \($0)" : "" } ?? ""
            switch driver {
            case let driver? where Self.dpdkDrivers.contains(driver):
                vfio = vfio || driver == "vfio-pci"
                var text = "bound to \(driver)\(node)"
                if driver == "vfio-pci" {
                    if let group = linkName("\(device)/iommu_group") {
                        text += ", IOMMU group \(group)"
                    }
                } else {
                    text += " (no IOMMU protection: DPDK needs IOVA as PA, CAP_SYS_ADMIN; vfio-pci is safer)"
                }
                results.append((what, driver == "vfio-pci" ? .ok(text) : .warning(text)))
            case let driver? where Self.bifurcatedDrivers.contains(driver):
                results.append(
                    (what, .ok("kernel driver \(driver)\(node): DPDK's mlx driver works beside it (no binding)"))
                )
            case let driver:
                vfio = true
                let bound = driver.map { "bound to the kernel driver \($0)" } ?? "bound to no driver"
                results.append(
                    (
                        what,
                        .failed(
                            "\(bound): DPDK cannot take it. Bind it to vfio-pci, now and at every boot: driverctl set-override \(address) vfio-pci (Deployment.md, \"Binding the NIC\")"
                        )
                    )
                )
            }
        }
        if vfio { results.append(("IOMMU", iommu())) }
        return results
    }

    /// vfio-pci needs the IOMMU on, or vfio's unsafe no-IOMMU mode.
    func iommu() -> Outcome {
        let groups = entries("sys/kernel/iommu_groups")
        if !groups.isEmpty {
            return .ok(
                "on (\(groups.count) IOMMU group\(groups.count == 1 ? "" : "s")): vfio-pci isolates the NIC's DMA"
            )
        }
        if read("sys/module/vfio/parameters/enable_unsafe_noiommu_mode") == "Y" {
            return .warning(
                "off, vfio in its unsafe no-IOMMU mode: the NIC can write anywhere in memory, and DPDK needs --iova-mode=pa and CAP_SYS_RAWIO (which fastcapa.service does not grant). Turn the IOMMU on instead (Deployment.md, \"IOMMU\")"
            )
        }
        let amd = read("proc/cpuinfo")?.contains("AuthenticAMD") == true
        let parameters = amd ? "amd_iommu=on iommu=pt" : "intel_iommu=on iommu=pt"
        return .failed(
            "off (no /sys/kernel/iommu_groups): vfio-pci cannot open the NIC. Add \(parameters) to GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot (and turn VT-d/AMD-Vi on in the firmware)"
        )
    }

    // MARK: CPUs

    /// Whether the worker lcores' CPUs are kept from the scheduler, and the control threads are not.
    /// - Parameters:
    ///   - workerCPUs: the CPUs EAL pinned the worker lcores the capture would use to.
    ///   - controlCPUs: where the control threads would run (`--control-cores`).
    ///   - processCPUs: the CPUs the process may use (for the recommended layout).
    func cpus(workerCPUs: [Int], controlCPUs: [Int], processCPUs: [Int]) -> [(String, Outcome)] {
        let isolated = Set(read("sys/devices/system/cpu/isolated").flatMap { Self.cpuList($0) } ?? [])
        let nohz = Set(read("sys/devices/system/cpu/nohz_full").flatMap { Self.cpuList($0) } ?? [])
        let workers = Array(Set(workerCPUs)).sorted()
        let layout = LcoreLayout(settings: settings, cpus: processCPUs)
        let recommended =
            "Deployment.md, \"Cores\": on CPUs \(ControlCores.formatList(processCPUs)) it recommends \(layout.option)"
            + (layout.isolation.map { " with \($0)" } ?? "")
        var results: [(String, Outcome)] = []
        let notIsolated = workers.filter { !isolated.contains($0) }
        // A kernel built without NO_HZ_FULL has no nohz_full file: nothing to add there.
        let tickless = exists("sys/devices/system/cpu/nohz_full")
        let ticking = workers.filter { tickless && isolated.contains($0) && !nohz.contains($0) }
        let list = ControlCores.formatList(workers)
        if !notIsolated.isEmpty {
            let fix = "isolcpus=\(list) nohz_full=\(list) rcu_nocbs=\(list)"
            results.append(
                (
                    "lcores",
                    .warning(
                        "the worker lcores' CPUs \(ControlCores.formatList(notIsolated)) are not isolated: other threads run there, and a polling lcore that loses its CPU for milliseconds lets the NIC's descriptors overflow (rx_missed). Add \(fix) to GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot (\(recommended))"
                    )
                )
            )
        } else if !ticking.isEmpty {
            let ticks = ControlCores.formatList(ticking)
            results.append(
                (
                    "lcores",
                    .warning(
                        "CPUs \(ticks) are isolated but still take the timer tick: add nohz_full=\(ticks) rcu_nocbs=\(ticks) to GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot"
                    )
                )
            )
        } else {
            results.append(
                ("lcores", .ok("the worker lcores' CPUs \(list) are isolated (isolcpus, nohz_full) (\(recommended))"))
            )
        }
        let crowded = controlCPUs.filter { isolated.contains($0) }
        if !controlCPUs.isEmpty && crowded.count == controlCPUs.count {
            results.append(
                (
                    "control cores",
                    .warning(
                        "CPUs \(ControlCores.formatList(controlCPUs)) are all isolated: the scheduler does not spread librdkafka's threads over isolated CPUs, they all run on the first. Give control-cores CPUs that are not isolated"
                    )
                )
            )
        }
        return results
    }

    /// `-l LIST` naming CPUs the process may not use (Configs/nic.yaml's `-l 0-4` on a smaller host): EAL
    /// refuses them with "lcore N unavailable"; this names the layout that fits instead.
    func lcoreList(processCPUs: [Int]) -> [(String, Outcome)] {
        guard let list = Self.values(of: ["-l"], in: eal).last, !processCPUs.isEmpty else { return [] }
        let missing = Self.cpuList(list).filter { !processCPUs.contains($0) }
        guard !missing.isEmpty else { return [] }
        let layout = LcoreLayout(settings: settings, cpus: processCPUs)
        let allowed = ControlCores.formatList(processCPUs)
        return [
            (
                "lcores",
                .failed(
                    "-l \(list) names CPUs \(ControlCores.formatList(missing)) that this process may not use (only \(allowed)): EAL refuses them. Give \(layout.option) in the eal: list (Deployment.md, \"Cores\")"
                )
            )
        ]
    }

    /// "1-4,6" → [1, 2, 3, 4, 6]; [] for "" and "(null)".
    static func cpuList(_ text: String) -> [Int] {
        text.split(separator: ",").flatMap { part -> [Int] in
            let bounds = part.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard let low = bounds.first, let high = bounds.last, low <= high else { return [] }
            return Array(low...high)
        }
    }
}
