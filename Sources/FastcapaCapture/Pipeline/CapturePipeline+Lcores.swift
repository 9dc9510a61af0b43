import Glibc

extension CapturePipeline {
    /// Co-schedules a queue's receive and transmit loops on its receive lcore when the lcore map
    /// pins both lcores to the same single CPU (one transmit worker); else each loop gets its lcore.
    func plan(
        port: UInt16,
        queue: Int,
        receiveLcore: UInt32,
        transmitLcores queueTransmitLcores: [UInt32],
        firstTransmitWorker: Int
    ) {
        let receiveCPUs = CPUAffinity.of(lcore: receiveLcore)
        let cpus = { (lcore: UInt32) in ControlCores.formatList(CPUAffinity.of(lcore: lcore)) }
        if !testing.splitWorkers && queueTransmitLcores.count == 1 && receiveCPUs.count == 1
            && CPUAffinity.of(lcore: queueTransmitLcores[0]) == receiveCPUs
        {
            coScheduled.append(
                CoScheduledWorker(receive: receiveWorkers.last!, transmit: transmitWorkers[firstTransmitWorker])
            )
            coScheduledLcores.append(receiveLcore)
            workerLayout.append(
                "port \(port) queue \(queue): receive and transmit worker \(firstTransmitWorker) co-scheduled on lcore "
                    + "\(receiveLcore) (CPU \(cpus(receiveLcore))), lcore \(queueTransmitLcores[0]) unused: both were given CPU \(cpus(receiveLcore))"
            )
            return
        }
        transmitLcores.append(contentsOf: queueTransmitLcores)
        let transmit = queueTransmitLcores.enumerated().map {
            "transmit worker \(firstTransmitWorker + $0.offset) on lcore \($0.element) (CPU \(cpus($0.element)))"
        }
        workerLayout.append(
            "port \(port) queue \(queue): receive on lcore \(receiveLcore) (CPU \(cpus(receiveLcore))), "
                + transmit.joined(separator: ", ")
        )
    }

    /// - Parameter cpus: the CPUs the process may use: the fix names the layout for them (`LcoreLayout`).
    package static func checkLcores(_ available: Int, settings: CaptureSettings, cpus: [Int]) throws(CaptureError) {
        let needed = settings.workerLcoresNeeded
        guard available < needed else { return }
        let ports = settings.ports.count
        let queues = settings.rxQueues
        let layout = LcoreLayout(settings: settings, cpus: cpus)
        throw CaptureError(
            "\(needed) worker lcores are needed (\(ports) port\(ports == 1 ? "" : "s") × \(queues) queue\(queues == 1 ? "" : "s")"
                + " × (1 receive + \(settings.txWorkersPerRing) transmit)) but EAL gave \(available)",
            fix:
                "Give EAL \(needed + 1) lcores (one main + \(needed) workers); on \(cpus.count == 1 ? "CPU" : "CPUs") \(ControlCores.formatList(cpus)): "
                + "\(layout.option) (Deployment.md, \"Cores\")."
        )
    }
}
