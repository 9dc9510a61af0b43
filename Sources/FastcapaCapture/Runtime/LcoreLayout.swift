/// The one lcore layout fastcapa recommends for a host: `fastcapa check`, the
/// too-few-lcores refusal, README, Configs/nic.yaml and Deployment.md all give
/// this rule's answer (a test keeps the files in agreement).
///
/// - Enough CPUs (one per lcore): lcore N on CPU N (`-l 0-N`). The main lcore
///   and the control threads (`--control-cores auto`) keep the first CPU and
///   every CPU after the workers'; the workers' CPUs are the ones to isolate.
/// - Fewer, but at least 2: the main lcore on the first CPU (with the control
///   threads), and each ring's receive and transmit lcores together on one of
///   the other CPUs, in turn (`--lcores '0@0,1@1,2@1'` on 2 CPUs): a queue's two loops hand
///   packets over within one core's caches (co-scheduled with one transmit
///   worker), and librdkafka's broker thread keeps CPU 0 (Performance.md).
/// - One CPU: every lcore on it.
package struct LcoreLayout: Equatable, Sendable {
    /// The EAL option, as written on a command line: `-l 0-4` or `--lcores '0@0,1@1,2@1'`.
    package var option: String
    /// The CPUs the worker lcores run on: the ones to isolate (`isolcpus=`, `nohz_full=`).
    package var workerCPUs: [Int]
    /// Whether each polling lcore has a CPU of its own (then `idle-sleep-max-us: 0` pays off).
    package var dedicated: Bool

    /// - Parameters:
    ///   - rings: ports × receive queues.
    ///   - txWorkers: transmit workers per ring.
    ///   - cpus: the CPUs the probe may use (the process's affinity), in order.
    package init(rings: Int, txWorkers: Int, cpus: [Int]) {
        let cpus = cpus.isEmpty ? [0] : cpus.sorted()
        let perRing = 1 + txWorkers
        let lcores = 1 + rings * perRing
        if cpus.count >= lcores {
            // lcore ids are CPU ids: EAL pins each to its own.
            option = "-l \(ControlCores.formatList(Array(cpus.prefix(lcores))))"
            workerCPUs = Array(cpus[1..<lcores])
            dedicated = true
        } else if cpus.count >= 2 {
            var mapping = ["0@\(cpus[0])"]
            for ring in 0..<rings {
                let cpu = cpus[1 + ring % (cpus.count - 1)]
                for worker in 0..<perRing { mapping.append("\(1 + ring * perRing + worker)@\(cpu)") }
            }
            option = "--lcores '\(mapping.joined(separator: ","))'"
            workerCPUs = Array(cpus[1...min(rings, cpus.count - 1)])
            dedicated = false
        } else {
            option = "--lcores '(0-\(lcores - 1))@\(cpus[0])'"
            workerCPUs = []
            dedicated = false
        }
    }

    package init(settings: CaptureSettings, cpus: [Int]) {
        self.init(rings: settings.ports.count * settings.rxQueues, txWorkers: settings.txWorkersPerRing, cpus: cpus)
    }

    /// The CPUs the calling thread may use: before EAL pins the main thread, the process's.
    package static var allowedCPUs: [Int] { CPUAffinity.ofThisThread() }

    /// The kernel command line that keeps the scheduler, timer ticks and RCU
    /// callbacks off the workers' CPUs; nil when they share CPU 0.
    package var isolation: String? {
        guard !workerCPUs.isEmpty else { return nil }
        let list = ControlCores.formatList(workerCPUs)
        return "isolcpus=\(list) nohz_full=\(list) rcu_nocbs=\(list)"
    }
}
