import CDPDK
import FastcapaKafka

extension CapturePipeline {
    func build(kafka: KafkaProperties, lcores: [UInt32], cpus: [Int]) throws {
        let portIDs = settings.ports
        // Check every port before touching any: that it exists, its queues, and
        // that it delivers every frame whole.
        var paths: [ReceivePath] = []
        for id in portIDs {
            let info = try Port.inspect(id)
            let path = try ReceivePath.plan(port: id, info: info, rxQueues: settings.rxQueues)
            // A flow cutoff needs both directions of a flow on one queue: refused before any port is touched.
            if settings.flowCutoff != nil {
                _ = try SymmetricRSS.plan(
                    port: id,
                    driver: path.driver,
                    rxQueues: settings.rxQueues,
                    hashFunctions: Port.rssHashFunctions(info, rxQueues: settings.rxQueues),
                    keySize: info.hash_key_size
                )
            }
            paths.append(path)
        }
        try Self.checkLcores(lcores.count, settings: settings, cpus: cpus)
        if !settings.ringFullGiven && paths.allSatisfy(\.replaysFilesOnce) {
            settings.ringFull = .wait
            replayWaits = true
        }
        let captureTimeField = CDPDK_rte_mbuf_dynfield_register_u64("fastcapa_capture_time_ns")
        guard captureTimeField >= 0 else {
            throw CaptureError("cannot register the capture-time mbuf field: \(CaptureError.dpdkReason())", fix: "")
        }
        // One pool per port, on the port's NUMA socket: a packet never crosses sockets to be received.
        for path in paths {
            let sizing = MempoolSizing(
                settings: settings,
                path: path,
                lcores: settings.workerLcoresNeeded / portIDs.count + 1
            )
            let pool = try Self.makePool(path: path, sizing: sizing)
            pools.append(pool)
            mempools.append(sizing)
            ports.append(
                try Port.configure(
                    path: path,
                    rxQueues: settings.rxQueues,
                    rxDescriptors: settings.rxDescriptors,
                    pool: pool,
                    symmetricRSS: settings.flowCutoff != nil
                )
            )
        }
        // The capture filter: converted to eBPF and loaded (JIT-compiled) once, for every receive worker.
        if let expression = settings.filterExpression {
            filter = FilterSlot(
                try PacketFilter(expression: expression, snapLength: settings.snapLength, engine: settings.filterEngine)
            )
        }
        // The flow cutoff's and duplicate window's rules; their tables are made per queue below.
        rules = ReceiveRulesSlot(settings.receiveRules)
        // Each port's timestamps, read once every port has started (drivers register the field then).
        let deviceTimestamps = ports.map { port in
            DeviceTimestamp.forPort(port.id, driver: port.driver, timestampOffload: port.timestampOffload)
        }
        captureTimes = zip(ports, deviceTimestamps).map { port, timestamp in
            DeviceTimestamp.describe(timestamp, port: port.id, driver: port.driver)
        }

        var lcoreIterator = lcores.makeIterator()
        for (port, deviceTimestamp) in zip(ports, deviceTimestamps) {
            for queue in 0..<settings.rxQueues {
                let ringIndex = rings.count
                let ring = try makeRing(port: port, queue: queue)
                rings.append(ring)
                receiveWorkers.append(
                    ReceiveWorker(
                        port: port.id,
                        queue: UInt16(queue),
                        ring: ring,
                        settings: settings,
                        counters: rxCounters[ringIndex],
                        control: control,
                        captureTimeField: captureTimeField,
                        deviceTimestamp: deviceTimestamp,
                        filter: filter,
                        rules: rules,
                        flows: settings.flowCutoff == nil
                            ? nil
                            : try FlowTable(capacity: settings.flowTableSize, socket: port.socket, queue: ringIndex),
                        duplicates: settings.dedupWindowMicros == 0
                            ? nil
                            : try DuplicateWindow(
                                entries: settings.dedupTableSize,
                                socket: port.socket,
                                queue: ringIndex
                            )
                    )
                )
                let receiveLcore = lcoreIterator.next()!
                receiveLcores.append(receiveLcore)
                var queueTransmitLcores: [UInt32] = []
                for worker in 0..<settings.txWorkersPerRing {
                    let txIndex = ringIndex * settings.txWorkersPerRing + worker
                    transmitWorkers.append(
                        try TransmitWorker(
                            index: txIndex,
                            ring: ring,
                            port: port.id,
                            queue: queue,
                            settings: settings,
                            counters: txCounters[txIndex],
                            control: control,
                            captureTimeField: captureTimeField,
                            cutLength: port.path.cutLength,
                            kafka: kafka
                        )
                    )
                    queueTransmitLcores.append(lcoreIterator.next()!)
                }
                plan(
                    port: port.id,
                    queue: queue,
                    receiveLcore: receiveLcore,
                    transmitLcores: queueTransmitLcores,
                    firstTransmitWorker: transmitWorkers.count - settings.txWorkersPerRing
                )
            }
        }
    }

    private static func makePool(path: ReceivePath, sizing: MempoolSizing) throws(CaptureError) -> OpaquePointer {
        let id = path.port
        guard
            let pool = rte_pktmbuf_pool_create(
                "fastcapa_mbufs_\(id)",
                UInt32(sizing.mbufs),
                UInt32(MempoolSizing.cacheSize),
                0,
                UInt16(sizing.dataRoom),
                rte_eth_dev_socket_id(id)
            )
        else {
            let size =
                "\(sizing.mbufs) packet buffers of \(sizing.dataRoom) bytes (\(sizing.bytes >> 20) MiB)"
            if case .afPacket(let ring) = path.kind {
                throw CaptureError(
                    "cannot allocate \(size) for port \(id) (\(path.device.name), framesz=\(ring.frameSize)): "
                        + "\(CaptureError.dpdkReason())",
                    fix:
                        "The af_packet driver copies each frame into one buffer of framesz bytes: give EAL more memory "
                        + "(-m, or hugepages), use a smaller framesz that still holds the interface's frames, or lower "
                        + "the ring size and receive queues (ring-size, rx-queues), which size the pool."
                )
            }
            throw CaptureError(
                "cannot allocate \(size) for port \(id): \(CaptureError.dpdkReason())",
                fix: "Give EAL more memory (-m, or hugepages), or lower the receive descriptors, ring size "
                    + "and receive queues (rx-desc, ring-size, rx-queues), which size the pool."
            )
        }
        return pool
    }

    /// One ring per receive queue: a single producer (the receive worker), and
    /// a single consumer unless several transmit workers share it.
    private func makeRing(port: Port, queue: Int) throws(CaptureError) -> OpaquePointer {
        let flags = UInt32(RING_F_SP_ENQ) | (settings.txWorkersPerRing == 1 ? UInt32(RING_F_SC_DEQ) : 0)
        guard
            let ring = rte_ring_create("fastcapa_tx_\(port.id)_\(queue)", UInt32(settings.ringSize), port.socket, flags)
        else {
            throw CaptureError(
                "cannot create transmit ring \(rings.count) of \(settings.ringSize) slots: \(CaptureError.dpdkReason())",
                fix: "Lower the ring size (ring-size) or give EAL more memory (-m)."
            )
        }
        return ring
    }
}
