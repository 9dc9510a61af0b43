import CDPDK
import Foundation

/// Where the control plane's threads run: librdkafka's broker threads, the
/// supervisors, the metrics server. They are created by the main thread after
/// `rte_eal_init`, so they inherit its affinity; DPDK pins the main thread to
/// the main lcore's core, which would crowd all of them onto one core next to
/// whatever lcore shares it.
package enum ControlCores: Sendable, Equatable, CustomStringConvertible {
    /// The CPUs the process was given that no worker lcore is pinned to; all of
    /// them when the workers take every CPU (small hosts: the kernel then
    /// shares the cores, and lcores that back off leave room).
    case auto
    /// DPDK's own behaviour: the main lcore's CPUs.
    case mainLcore
    /// These CPUs.
    case cpus([Int])

    package init(parsing text: String) throws(CaptureSettings.Invalid) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        switch trimmed {
        case "auto": self = .auto
        case "main-lcore": self = .mainLcore
        default:
            guard let cpus = Self.parseList(trimmed), !cpus.isEmpty else {
                throw CaptureSettings.Invalid(
                    key: "control-cores",
                    name: "control cores",
                    problem: "'\(text)' is not a CPU list",
                    fix: "Use auto (default), main-lcore, or CPU numbers and ranges such as 0 or 0,2-3."
                )
            }
            self = .cpus(cpus)
        }
    }

    package var description: String {
        switch self {
        case .auto: "auto"
        case .mainLcore: "main-lcore"
        case .cpus(let cpus): Self.formatList(cpus)
        }
    }

    /// "0,2-3" → [0, 2, 3]; nil when malformed.
    static func parseList(_ text: String) -> [Int]? {
        var cpus: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count),
                let low = Int(bounds[0].trimmingCharacters(in: .whitespaces)),
                let high = Int(bounds[bounds.count - 1].trimmingCharacters(in: .whitespaces)),
                low >= 0, low <= high, high < CPUAffinity.setSize
            else { return nil }
            cpus.append(contentsOf: low...high)
        }
        return Array(Set(cpus)).sorted()
    }

    /// [0, 2, 3] → "0,2-3".
    package static func formatList(_ cpus: [Int]) -> String {
        var parts: [String] = []
        var index = 0
        let sorted = cpus.sorted()
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
            parts.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }
}

extension EalRuntime {
    /// Moves the main thread, and so every thread it creates from now on, to
    /// the control cores. Call before creating producers or starting the
    /// supervisors. Returns the CPUs chosen.
    package func confineControlThreads(_ policy: ControlCores) throws(CaptureError) -> [Int] {
        let chosen: [Int]
        switch policy {
        case .mainLcore:
            return CPUAffinity.ofThisThread()
        case .auto:
            let taken = Set(workerLcores.flatMap { CPUAffinity.of(lcore: $0) })
            let free = processCPUs.filter { !taken.contains($0) }
            chosen = free.isEmpty ? processCPUs : free
        case .cpus(let cpus):
            let allowed = Set(processCPUs)
            guard cpus.allSatisfy(allowed.contains) else {
                throw CaptureError(
                    "control cores \(ControlCores.formatList(cpus)) are not all among the CPUs this process may use (\(ControlCores.formatList(processCPUs)))",
                    fix: "Give control-cores CPUs from \(ControlCores.formatList(processCPUs)), or auto."
                )
            }
            chosen = cpus
        }
        guard !chosen.isEmpty else { return CPUAffinity.ofThisThread() }
        let error = CPUAffinity.confineThisThread(to: chosen)
        guard error == 0 else {
            throw CaptureError(
                "cannot move the control threads to CPUs \(ControlCores.formatList(chosen)) (\(String(cString: strerror(error))))",
                fix: "Give control-cores CPUs this process may use, or main-lcore to keep DPDK's pinning."
            )
        }
        return chosen
    }
}
