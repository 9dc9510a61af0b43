import FastcapaCapture
import FastcapaKafka
import Foundation

/// `fastcapa check`: everything a capture with this configuration would need,
/// checked without capturing. One line per check on standard output:
/// `check: WHAT: ok: ...`, `check: WHAT: warning: ...` or `check: WHAT: FAILED: ...`.
/// Exit status 0 when nothing failed, 1 otherwise (a bad configuration never
/// gets here: it exits 64 first, with the capture's message).
struct CheckRun {
    let configuration: ResolvedConfiguration
    let timeoutSeconds: Int
    var write: (String) -> Void = { line in
        print(line)
        fflush(nil)
    }

    private var settings: CaptureSettings { configuration.settings }
    /// The host's readings (hugepages, drivers, IOMMU, isolated CPUs); tests give it another root.
    var host: HostCheck { HostCheck(eal: configuration.eal, settings: settings, root: hostRoot) }
    var hostRoot = "/"

    /// What each check found.
    enum Outcome {
        case ok(String)
        case warning(String)
        case failed(String)
    }

    func run() -> Int32 {
        var failures = 0
        func report(_ what: String, _ outcome: Outcome) {
            switch outcome {
            case .ok(let text): write("check: \(what): ok: \(text)")
            case .warning(let text): write("check: \(what): warning: \(text)")
            case .failed(let text):
                failures += 1
                write("check: \(what): FAILED: \(text)")
            }
        }
        report("configuration", .ok(configurationSummary()))
        report("bundles", .ok(settings.bundleSummary))
        for warning in configuration.warnings { report("configuration", .warning(warning)) }
        report("librdkafka", .ok(librdkafkaSummary()))
        for (what, outcome) in files() { report(what, outcome) }
        let lcoreList = host.lcoreList(processCPUs: LcoreLayout.allowedCPUs)
        for (what, outcome) in host.hugepages() + host.devices() + lcoreList { report(what, outcome) }
        if lcoreList.contains(where: { if case .failed = $0.1 { true } else { false } }) {
            // EAL would refuse the same list and print its whole usage text: the line above says it all.
            report("EAL", .failed("not started: the lcore list above names CPUs this process may not use"))
        } else {
            for (what, outcome) in dpdk() { report(what, outcome) }
        }
        report("Kafka", kafka())
        if failures == 0 {
            write("check: ready: a capture with this configuration would start")
            return ExitStatus.success
        }
        write(
            "check: \(failures) check\(failures == 1 ? "" : "s") failed; fix \(failures == 1 ? "it" : "them") and run fastcapa check again"
        )
        return ExitStatus.startFailed
    }

    private func configurationSummary() -> String {
        var parts: [String] = []
        parts.append(configuration.kafkaConfig.map { "Kafka file \($0)" } ?? "no Kafka file")
        parts.append("\(configuration.kafka.global.count + configuration.kafka.topic.count) Kafka properties")
        parts.append("topic '\(settings.topic)'")
        parts.append("record time \(settings.recordTime.summary)")
        let ports = settings.ports.map(String.init).joined(separator: ", ")
        parts.append(
            "port\(settings.ports.count == 1 ? "" : "s") \(ports) × \(settings.rxQueues) queue\(settings.rxQueues == 1 ? "" : "s") × \(settings.txWorkersPerRing) transmit worker\(settings.txWorkersPerRing == 1 ? "" : "s")"
        )
        return parts.joined(separator: ", ") + " (fastcapa -- --print-config prints it all, secrets redacted)"
    }

    private func librdkafkaSummary() -> String {
        let global = configuration.kafka.global
        func latest(_ key: String) -> String? { global.last { $0.key == key }?.value }
        var chosen: [String] = []
        for key in ["security.protocol", "sasl.mechanisms", "sasl.mechanism", "compression.codec", "compression.type"] {
            if let value = latest(key) { chosen.append("\(key)=\(value)") }
        }
        let accepted = chosen.isEmpty ? "every property accepted" : "accepts \(chosen.joined(separator: ", "))"
        return "\(LibrdkafkaBuild.version) \(accepted); built with \(LibrdkafkaBuild.features.joined(separator: ","))"
    }

    /// The files the capture would append to.
    private func files() -> [(String, Outcome)] {
        [("stats-file", configuration.statsFile), ("counter-trace", configuration.counterTrace)].compactMap {
            key,
            path in
            guard let path else { return nil }
            let exists = FileManager.default.fileExists(atPath: path)
            let target = exists ? path : (path as NSString).deletingLastPathComponent.nonEmpty ?? "."
            guard access(target, W_OK) == 0 else {
                return (
                    key,
                    .failed(
                        "\(exists ? "'\(path)'" : "the folder '\(target)' of '\(path)'") is not writable by this user"
                    )
                )
            }
            return (key, .ok("\(path) (\(exists ? "appended to" : "created"))"))
        }
    }

    /// EAL, lcores, control cores and ports, EAL apart from a running probe
    /// (`checkEalArguments`).
    private func dpdk() -> [(String, Outcome)] {
        let arguments = Self.checkEalArguments(configuration.eal)
        let eal: EalRuntime
        do {
            eal = try Eal.initialize(programName: CommandLine.arguments.first ?? "fastcapa", arguments: arguments)
        } catch {
            return [("EAL", .failed("\(error)"))]
        }
        defer { eal.cleanup() }
        var results: [(String, Outcome)] = []
        let lcores = eal.workerLcores
        do {
            try CapturePipeline.checkLcores(lcores.count, settings: settings, cpus: eal.processCPUs)
            results.append(
                (
                    "EAL",
                    .ok(
                        "\(lcores.count + 1) lcores (1 main + \(lcores.count) workers), \(settings.workerLcoresNeeded) worker\(settings.workerLcoresNeeded == 1 ? "" : "s") needed"
                    )
                )
            )
        } catch {
            results.append(("EAL", .failed("\(error)")))
        }
        var controlCPUs: [Int] = []
        do {
            controlCPUs = try eal.confineControlThreads(configuration.controlCores)
            results.append(("control cores", .ok("CPUs \(ControlCores.formatList(controlCPUs))")))
        } catch {
            results.append(("control cores", .failed("\(error)")))
        }
        if lcores.count >= settings.workerLcoresNeeded {
            let workerCPUs = lcores.prefix(settings.workerLcoresNeeded).flatMap { eal.cpus(ofLcore: $0) }
            results += host.cpus(workerCPUs: workerCPUs, controlCPUs: controlCPUs, processCPUs: eal.processCPUs)
        }
        let available = PortCheck.available()
        let sockets = PortCheck.sockets(of: Array(lcores.prefix(settings.workerLcoresNeeded)))
        for id in settings.ports {
            let what = "port \(id)"
            do {
                let port = try PortCheck.check(
                    id,
                    rxQueues: settings.rxQueues,
                    rxDescriptors: settings.rxDescriptors,
                    lcoreSockets: sockets,
                    symmetricRSS: settings.flowCutoff != nil
                )
                results.append((what, .ok(Self.describe(port))))
                if let plan = port.flowQueueing { results.append((what, .ok(plan.description(port: id)))) }
                results += port.warnings.map { (what, .warning($0)) }
            } catch {
                var text = "\(error)"
                if available.isEmpty && configuration.eal.contains(where: { $0 == "-a" || $0.hasPrefix("--allow") }) {
                    text +=
                        " (a device another DPDK process holds, such as a running probe, cannot be opened: stop it first)"
                }
                results.append((what, .failed(text)))
            }
        }
        results += volumeReduction()
        if settings.ports.allSatisfy({ id in available.contains { $0.id == id } })
            && available.count > settings.ports.count
        {
            let unused = available.filter { port in !settings.ports.contains(port.id) }
            results.append(
                (
                    "ports",
                    .ok(
                        "DPDK also found \(unused.map { "port \($0.id) (\($0.name))" }.joined(separator: ", ")), not in the port mask"
                    )
                )
            )
        }
        return results
    }

    /// The flow tables and duplicate windows a capture would make: what they take, and whether EAL's
    /// memory holds them all at once (each is made here, and freed at the end).
    private func volumeReduction() -> [(String, Outcome)] {
        let queues = settings.ports.count * settings.rxQueues
        var results: [(String, Outcome)] = []
        var tables: [AnyObject] = []
        /// Makes one table per queue; "what: text, sizes" with the first failure, if any.
        func make(_ what: String, _ text: String, bytesEach: Int, _ table: (Int) throws(CaptureError) -> AnyObject) {
            func mebibytes(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
            let described =
                "\(text), \(mebibytes(bytesEach)) each, \(mebibytes(bytesEach * queues)) of DPDK memory in all"
            for queue in 0..<queues {
                do throws(CaptureError) { tables.append(try table(queue)) } catch {
                    results.append((what, .failed("\(described): \(error)")))
                    return
                }
            }
            results.append((what, .ok(described + " (made here: EAL's memory holds them, the packet buffers aside)")))
        }
        if let cutoff = settings.flowCutoff {
            make(
                "flow cutoff",
                "\(cutoff.summary); \(queues) table(s) of \(settings.flowTableSize) flows",
                bytesEach: FlowTable.approximateBytes(capacity: settings.flowTableSize)
            ) { queue throws(CaptureError) in try FlowTable(capacity: settings.flowTableSize, socket: -1, queue: queue)
            }
        }
        if settings.dedupWindowMicros > 0 {
            let entries = DuplicateWindow.roundedEntries(settings.dedupTableSize)
            make(
                "duplicate removal",
                "window \(settings.dedupWindowMicros) µs; \(queues) window(s) of \(entries) frames",
                bytesEach: DuplicateWindow.approximateBytes(entries: entries)
            ) { queue throws(CaptureError) in
                try DuplicateWindow(entries: settings.dedupTableSize, socket: -1, queue: queue)
            }
        }
        withExtendedLifetime(tables) {}
        return results
    }

    static func describe(_ port: PortCheck) -> String {
        var parts = ["\(port.name) (\(port.driver))"]
        parts.append(port.socket >= 0 ? "NUMA node \(port.socket)" : "NUMA node unknown")
        parts.append("\(port.rxQueues) of \(port.maxRxQueues) receive queues")
        parts.append(port.rss.isEmpty ? "RSS off (1 queue)" : "RSS over \(port.rss.joined(separator: ", "))")
        parts.append("\(port.rxDescriptors) descriptors per queue")
        parts.append("MTU \(port.mtu) (max \(port.maxMTU))")
        parts.append(port.scatter ? "scatter on (jumbo frames arrive whole)" : "no scatter")
        parts.append("capture time: \(port.captureTime.source)")
        return parts.joined(separator: ", ")
    }

    /// The capture's EAL arguments, run apart from a probe that may be running:
    /// fastcapa's own per-process prefix (runtime folder removed at exit)
    /// instead of the configuration's, `--no-telemetry` (no socket), and with
    /// hugepages `--in-memory` (hugepage files unlinked at once; EAL refuses it
    /// with `--no-huge` and `--legacy-mem`, which leave no hugepage files).
    static func checkEalArguments(_ eal: [String]) -> [String] {
        var arguments: [String] = []
        var skipNext = false
        for argument in eal {
            if skipNext {
                skipNext = false
                continue
            }
            if argument == "--file-prefix" {
                skipNext = true
                continue
            }
            if argument.hasPrefix("--file-prefix=") || ["--in-memory", "--no-telemetry"].contains(argument) {
                continue
            }
            arguments.append(argument)
        }
        let inMemory = !arguments.contains { $0 == "--no-huge" || $0 == "--legacy-mem" }
        return arguments + (inMemory ? ["--in-memory"] : []) + ["--no-telemetry"]
    }

    /// The brokers: do they answer, and do they hold the topic.
    private func kafka() -> Outcome {
        if let problem = configuration.missingRequiredBroker { return .failed(problem) }
        guard configuration.kafka.hasBrokers else {
            return .ok(
                "no broker configured: the probe would start the embedded broker (librdkafka's mock cluster) with topic '\(settings.topic)' and \(configuration.embeddedPartitions) partition\(configuration.embeddedPartitions == 1 ? "" : "s"), for demos and tests. Give -c FILE, kafka: bootstrap.servers in the config file or -X bootstrap.servers=HOST:PORT for a real Kafka"
            )
        }
        let servers =
            configuration.kafka.globalValue("bootstrap.servers")
            ?? configuration.kafka.globalValue("metadata.broker.list") ?? ""
        switch ClusterCheck.run(
            properties: configuration.kafka,
            topic: settings.topic,
            timeoutMs: Int32(timeoutSeconds * 1000)
        ) {
        case .failure(let failure):
            let fix =
                switch failure.kind {
                case .authentication:
                    "Check sasl.mechanisms, sasl.username and sasl.password (and that security.protocol is SASL_SSL or SASL_PLAINTEXT as the brokers' listener expects)"
                case .tls:
                    "Check security.protocol against the brokers' listener (SSL or SASL_SSL only where the listener speaks TLS), ssl.ca.location and the certificates"
                case .unreachable:
                    "Check bootstrap.servers, the network path and that the brokers run; --timeout \(timeoutSeconds) s may be too short"
                case .refused:
                    "Fix the property librdkafka names"
                }
            return .failed("\(servers): \(failure). \(fix).")
        case .success(let answer):
            let brokers = answer.brokers.map(\.address).joined(separator: ", ")
            let summary =
                "\(answer.brokers.count) broker\(answer.brokers.count == 1 ? "" : "s") (\(brokers)) answered in \(answer.milliseconds) ms"
            guard let partitions = answer.partitions else {
                return .failed(
                    "\(summary), but topic '\(settings.topic)' \(answer.topicProblem ?? "is not usable"). Create it (kafka-topics.sh --create --topic \(settings.topic) ...) or give the topic that exists (-t)."
                )
            }
            return .ok("\(summary); topic '\(settings.topic)' has \(partitions) partition\(partitions == 1 ? "" : "s")")
        }
    }
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
