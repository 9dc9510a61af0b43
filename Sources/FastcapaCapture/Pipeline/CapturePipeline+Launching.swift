import CDPDK

extension CapturePipeline {
    /// Launches transmit workers first, so rings drain from the first packet.
    package func start() throws(CaptureError) {
        let coScheduledTransmit = Set(coScheduled.map { ObjectIdentifier($0.transmit) })
        let coScheduledReceive = Set(coScheduled.map { ObjectIdentifier($0.receive) })
        for (worker, lcore) in zip(
            transmitWorkers.filter { !coScheduledTransmit.contains(ObjectIdentifier($0)) },
            transmitLcores
        ) {
            worker.heartbeat = heartbeats.slot(lcore: lcore, loop: "transmit worker \(worker.index)")
            try launch(TransmitWorker.entry, Unmanaged.passUnretained(worker).toOpaque(), lcore)
        }
        for (worker, lcore) in zip(coScheduled, coScheduledLcores) {
            worker.heartbeat = heartbeats.slot(
                lcore: lcore,
                loop:
                    "receive port \(worker.receive.port) queue \(worker.receive.queue) and transmit worker \(worker.transmit.index)"
            )
            try launch(CoScheduledWorker.entry, Unmanaged.passUnretained(worker).toOpaque(), lcore)
        }
        for (worker, lcore) in zip(
            receiveWorkers.filter { !coScheduledReceive.contains(ObjectIdentifier($0)) },
            receiveLcores.filter { !coScheduledLcores.contains($0) }
        ) {
            worker.heartbeat = heartbeats.slot(lcore: lcore, loop: "receive port \(worker.port) queue \(worker.queue)")
            try launch(ReceiveWorker.entry, Unmanaged.passUnretained(worker).toOpaque(), lcore)
        }
    }

    private func launch(
        _ entry: @convention(c) (UnsafeMutableRawPointer?) -> Int32,
        _ arg: UnsafeMutableRawPointer,
        _ lcore: UInt32
    ) throws(CaptureError) {
        let status = rte_eal_remote_launch(entry, arg, lcore)
        guard status == 0 else {
            stopWorkers()
            throw CaptureError("cannot launch a worker on lcore \(lcore): \(CaptureError.dpdkReason(-status))", fix: "")
        }
    }
}
