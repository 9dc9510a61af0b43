import CDPDK
import CFastcapaShared
import CURCU
import Glibc

/// Polls one receive queue and feeds its transmit ring.
///
/// Per burst: receive, stamp each packet with its capture time (one clock read
/// per burst), re-burst while the queue keeps returning full bursts, run the
/// capture filter (read through RCU) and free what it rejects, then the
/// duplicate window and the flow cutoff (their rules read through RCU, their
/// state this queue's own) and free what they remove, enqueue the lot.
/// No allocation, lock, log line or actor call in the loop. The lcore is an RCU
/// (QSBR) reader of the filter and the rules: a quiescent state once per loop,
/// offline while it sleeps.
package final class ReceiveWorker: @unchecked Sendable {
    let port: UInt16
    let queue: UInt16
    let ring: OpaquePointer
    let burst: Int
    let maxRebursts: Int
    let ringFull: CaptureSettings.RingFullPolicy
    let counters: UnsafeMutablePointer<fastcapa_rx_counters>
    let control: WorkerControl
    let captureTimeField: Int32
    /// How this queue's port timestamps packets (nil: the TSC clock per burst); the loop runs on a copy.
    let deviceTimestamp: DeviceTimestamp<EthDeviceClockSource>?
    let idleSpinPolls: Int
    let idleSleepMaxMicros: Int
    let packets: UnsafeMutablePointer<OpaquePointer?>
    /// The capture filter (shared by every receive worker).
    let filter: FilterSlot
    /// The filter's verdict per packet, and the packets it rejected (pre-allocated).
    let verdicts: UnsafeMutablePointer<UInt64>
    let rejected: UnsafeMutablePointer<OpaquePointer?>
    /// Where `flowKey` reads a frame whose headers span segments (pre-allocated).
    let headerScratch: UnsafeMutableRawPointer
    /// One chunk's digests, flow keys and lookups (`reduce`), pre-allocated.
    let batch = ReductionBatch()
    /// The flow cutoff's and duplicate window's rules (shared by every receive worker).
    let rules: ReceiveRulesSlot
    /// This queue's flows (nil: no cutoff was set at start).
    let flows: FlowTable?
    /// This queue's recent frames (nil: no duplicate window was set at start).
    let duplicates: DuplicateWindow?
    /// A full ring takes packets again once this much of it is free (`RingRoomWait.resumeRoom`).
    let resumeRoom: Int
    /// Under `drop`, receiving pauses for a full ring this long at most (`RingRoomWait.longestDropWaitMicros`).
    let longestPauseTicks: UInt64
    /// The lcore's heartbeat (set by the pipeline before launch): one per turn of the loop.
    var heartbeat = Heartbeats.unwatched

    init(
        port: UInt16,
        queue: UInt16,
        ring: OpaquePointer,
        settings: CaptureSettings,
        counters: UnsafeMutablePointer<fastcapa_rx_counters>,
        control: WorkerControl,
        captureTimeField: Int32,
        deviceTimestamp: DeviceTimestamp<EthDeviceClockSource>?,
        filter: FilterSlot,
        rules: ReceiveRulesSlot,
        flows: FlowTable? = nil,
        duplicates: DuplicateWindow? = nil
    ) {
        self.port = port
        self.queue = queue
        self.ring = ring
        self.burst = settings.rxBurst
        self.maxRebursts = settings.maxRebursts
        self.ringFull = settings.ringFull
        self.counters = counters
        self.control = control
        self.captureTimeField = captureTimeField
        self.deviceTimestamp = deviceTimestamp
        self.idleSpinPolls = settings.idleSpinPolls
        self.idleSleepMaxMicros = settings.idleSleepMaxMicros
        let capacity = settings.rxBurst * (1 + settings.maxRebursts)
        packets = .allocate(capacity: capacity)
        packets.initialize(repeating: nil, count: capacity)
        self.filter = filter
        self.rules = rules
        self.flows = flows
        self.duplicates = duplicates
        verdicts = .allocate(capacity: capacity)
        verdicts.initialize(repeating: 0, count: capacity)
        rejected = .allocate(capacity: capacity)
        rejected.initialize(repeating: nil, count: capacity)
        headerScratch = .allocate(byteCount: Self.headerScratchSize, alignment: 64)
        resumeRoom = RingRoomWait.resumeRoom(capacity: Int(rte_ring_get_capacity(ring)))
        longestPauseTicks = RingRoomWait.longestDropWaitMicros * max(1, rte_get_tsc_hz() / 1_000_000)
    }

    deinit {
        packets.deallocate()
        verdicts.deallocate()
        rejected.deallocate()
        headerScratch.deallocate()
        releaseTables()
    }

    /// Frees the flow table and the duplicate window (DPDK memory) once the lcore has returned.
    func releaseTables() {
        flows?.release()
        duplicates?.release()
    }

    /// The lcore entry point: `arg` is an unretained `ReceiveWorker`.
    static let entry: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { arg in
        Unmanaged<ReceiveWorker>.fromOpaque(arg!).takeUnretainedValue().run()
    }

    /// What the loop keeps from one turn to the next.
    struct LoopState {
        var clock = CaptureClock<TscTimeSource>()
        /// The port's timestamps (a device clock's converter is this queue's own).
        var device: DeviceTimestamp<EthDeviceClockSource>?
        /// Packets [pendingStart, pendingEnd) of `packets` wait for ring room (`--ring-full wait`).
        var pendingStart = 0
        var pendingEnd = 0
        /// Under `drop`: when (TSC) receiving paused for a full ring; 0 while it runs.
        var pausedSince: UInt64 = 0
        var holdsPackets: Bool { pendingEnd > pendingStart }
    }

    func run() -> Int32 {
        CURCU_rcu_register_thread()
        defer { CURCU_rcu_unregister_thread() }
        let stop = control.flags + WorkerControl.stopReceiving
        let abandon = control.flags + WorkerControl.abandon
        let heartbeat = self.heartbeat
        var state = LoopState(device: deviceTimestamp)
        var roomWait = RingRoomWait(
            ring: ring,
            maxSleepMicros: idleSleepMaxMicros,
            rcuReader: true,
            heartbeat: heartbeat
        )
        var idle = IdleBackoff(spinPolls: idleSpinPolls, maxSleepMicros: idleSleepMaxMicros, rcuReader: true)
        while true {
            fastcapa_counter_add(heartbeat, 1)
            // Holds no filter record from the last turn.
            CURCU_rcu_quiescent_state()
            switch step(&state) {
            case .worked: idle.reset()
            case .idle: idle.idle()
            case .needsRoom:
                // Sleeps, so that the CPU goes to the transmit workers and librdkafka, which must catch
                // up; the NIC's descriptors hold the next packets meanwhile (what they cannot hold the NIC
                // counts as missed). Packets held for the ring wait until it has room or the drain gives up
                // on them; a paused receive resumes at that room or after a millisecond: capture goes on.
                let waits =
                    state.holdsPackets
                    ? roomWait.wait(forRoom: state.pendingEnd - state.pendingStart, unless: abandon)
                    : roomWait.wait(forRoom: Int.max, unless: stop, atMostMicros: RingRoomWait.longestDropWaitMicros)
                countRoomWaits(waits)
            case .done: return 0
            }
        }
    }

    /// One turn of the loop: the packets a full ring refused enqueued (`--ring-full wait`), or a
    /// burst received and enqueued. A burst the ring cannot take whole is kept for it under `wait`;
    /// under `drop` the rest is freed and counted, and receiving pauses until
    /// `RingRoomWait.resumeRoom` is free or `RingRoomWait.longestDropWaitMicros` have passed.
    /// `.needsRoom` while the ring has too little room to go on: the caller waits as it can (a
    /// receive lcore sleeps, a co-scheduled one transmits). `.done` once receiving has stopped and
    /// nothing is held. Never sleeps. The caller is an online RCU reader and reports a quiescent
    /// state between steps.
    @inline(__always)
    func step(_ state: inout LoopState) -> WorkerStep {
        let counters = self.counters
        let packets = self.packets
        if state.holdsPackets {
            let left = state.pendingEnd - state.pendingStart
            if fastcapa_flag_load(control.flags + WorkerControl.abandon) != 0 {
                // The drain gave up on the backlog: count it.
                CDPDK_rte_pktmbuf_free_bulk(packets + state.pendingStart, UInt32(left))
                fastcapa_counter_add(&counters.pointee.ring_full_drops, UInt64(left))
                state.pendingStart = 0
                state.pendingEnd = 0
                return .worked
            }
            if Int(rte_ring_free_count(ring)) < min(left, resumeRoom) { return .needsRoom }
            let sent = enqueue(ring, packets + state.pendingStart, left)
            fastcapa_counter_add(&counters.pointee.enqueued, UInt64(sent))
            state.pendingStart += sent
            if !state.holdsPackets {
                state.pendingStart = 0
                state.pendingEnd = 0
            }
            return .worked
        }
        if fastcapa_flag_load(control.flags + WorkerControl.stopReceiving) != 0 { return .done }
        if state.pausedSince != 0 {
            if Int(rte_ring_free_count(ring)) < resumeRoom && CDPDK_rte_rdtsc() &- state.pausedSince < longestPauseTicks
            {
                return .needsRoom
            }
            state.pausedSince = 0
        }
        guard let count = receiveBurst(&state.clock, &state.device) else { return .idle }
        if count == 0 { return .worked }
        let sent = enqueue(ring, packets, count)
        fastcapa_counter_add(&counters.pointee.enqueued, UInt64(sent))
        if sent < count {
            if ringFull == .wait {
                state.pendingStart = sent
                state.pendingEnd = count
            } else {
                CDPDK_rte_pktmbuf_free_bulk(packets + sent, UInt32(count - sent))
                fastcapa_counter_add(&counters.pointee.ring_full_drops, UInt64(count - sent))
                state.pausedSince = CDPDK_rte_rdtsc()
            }
        }
        return .worked
    }

    /// Counts waits for ring room (sleeps, spins or co-scheduled turns).
    @inline(__always)
    func countRoomWaits(_ waits: UInt64) {
        fastcapa_counter_add(&counters.pointee.ring_full_waits, waits)
    }

    /// Receives a burst into `packets` (nil when the queue had none): stamps
    /// each packet with its capture time (one clock read per burst), re-bursts
    /// while the queue keeps returning full bursts, counts, and runs the capture
    /// filter (read through RCU), freeing what it rejects. Returns how many
    /// packets, in order at the start of `packets`, go on to the ring.
    @inline(__always)
    func receiveBurst(
        _ clock: inout CaptureClock<TscTimeSource>,
        _ device: inout DeviceTimestamp<EthDeviceClockSource>?
    ) -> Int? {
        let counters = self.counters
        let packets = self.packets
        let burst = UInt16(self.burst)
        var count = Int(rte_eth_rx_burst(port, queue, packets, burst))
        if count == 0 { return nil }
        // Each burst's packets share the clock read right after it returned.
        var bytes = stamp(packets, count, at: clock.nowNanos(), &device, captureTimeField)
        // The queue is under pressure while bursts come back full: read
        // again now and hand the ring one larger batch.
        var last = count
        var rebursts = 0
        while last == Int(burst) && rebursts < maxRebursts {
            fastcapa_counter_add(&counters.pointee.full_bursts, 1)
            last = Int(rte_eth_rx_burst(port, queue, packets + count, burst))
            if last > 0 {
                bytes &+= stamp(packets + count, last, at: clock.nowNanos(), &device, captureTimeField)
            }
            count += last
            rebursts += 1
        }
        fastcapa_counter_add(&counters.pointee.received, UInt64(count))
        fastcapa_counter_add(&counters.pointee.received_bytes, bytes)
        fastcapa_counter_add(&counters.pointee.bursts, 1)
        fastcapa_counter_store(&counters.pointee.clock_held, clock.heldReads &+ (device?.clock?.heldReads ?? 0))

        // The capture filter: what it rejects is freed here and counted
        // as filtered (not a drop); the rest goes on, in order.
        if let record = CURCU_rcu_dereference(filter.pointer) {
            let verdict = PacketFilter.apply(
                record.assumingMemoryBound(to: FilterRecord.self),
                packets,
                count,
                verdicts: verdicts,
                rejected: rejected
            )
            if verdict.rejected > 0 {
                fastcapa_counter_add(&counters.pointee.filtered, UInt64(verdict.rejected))
            }
            count = verdict.kept
        }
        if flows == nil && duplicates == nil { return count }
        return reduce(count)
    }

    /// The duplicate window, then the flow cutoff, over the first `count`
    /// packets (their rules read through RCU): duplicates and packets past their
    /// flow's cutoff are freed and counted (not drops); the rest move up, in
    /// order. Duplicates go first, so that a second copy never counts in its
    /// flow. Returns how many are left.
    ///
    /// A chunk of up to `FlowTable.bulkLimit` packets at a time, in two passes:
    /// the first takes each packet's digest and flow key and starts loading
    /// their table entries (a prefetch per digest, one bulk lookup of the keys),
    /// the second decides each packet in receive order, its entries by then in
    /// the cache. A table entry per packet is a cache miss otherwise.
    @inline(__always)
    func reduce(_ count: Int) -> Int {
        let rules = CURCU_rcu_dereference(rules.pointer)!.assumingMemoryBound(to: ReceiveRules.self)
        let window = rules.pointee.dedupWindowMicros
        let cutoff = rules.pointee.cutoff
        // Unmanaged, used through guaranteed references: the worker holds the tables for the loop's
        // life, and a strong local (or an `if let` of one) costs a retain and a release, atomics, per packet.
        let duplicates = (window > 0 ? self.duplicates : nil).map { Unmanaged.passUnretained($0) }
        let flows = (cutoff != nil ? self.flows : nil).map { Unmanaged.passUnretained($0) }
        if duplicates == nil && flows == nil { return count }
        let packets = self.packets
        let rejected = self.rejected
        unowned(unsafe) let batch = self.batch
        var kept = 0
        var removed = 0
        var duplicateCount: UInt64 = 0
        var cutCount: UInt64 = 0
        var cutBytes: UInt64 = 0
        var tableFull: UInt64 = 0
        var start = 0
        while start < count {
            let chunk = min(count - start, FlowTable.bulkLimit)
            // Pass 1: capture times, digests (their buckets fetched), flow keys (looked up together).
            var keyed = 0
            for offset in 0..<chunk {
                let packet = packets[start + offset]
                batch.micros[offset] = CDPDK_RTE_MBUF_DYNFIELD_u64(packet, captureTimeField) / 1000
                if let duplicates {
                    duplicates._withUnsafeGuaranteedRef { window in
                        let digest = window.digest(packet!)
                        batch.digests[offset] = digest
                        window.prefetch(digest)
                    }
                }
                batch.keyIndex[offset] = -1
                if flows != nil, let key = flowKey(packet) {
                    batch.keys[keyed] = key
                    batch.keyIndex[offset] = Int32(keyed)
                    keyed += 1
                }
            }
            if let flows, keyed > 0 {
                flows._withUnsafeGuaranteedRef {
                    $0.lookUp(batch.keyPointers, count: keyed, signatures: batch.signatures, positions: batch.positions)
                }
            }
            // Pass 2: each packet in receive order.
            for offset in 0..<chunk {
                let packet = packets[start + offset]
                let micros = batch.micros[offset]
                if let duplicates,
                    duplicates._withUnsafeGuaranteedRef({
                        $0.isDuplicate(digest: batch.digests[offset], micros: micros, windowMicros: window)
                    })
                {
                    rejected[removed] = packet
                    removed += 1
                    duplicateCount &+= 1
                    continue
                }
                let keyIndex = Int(batch.keyIndex[offset])
                if let flows, let cutoff, keyIndex >= 0 {
                    let length = CDPDK_rte_mbuf_pkt_len(packet)
                    let verdict = flows._withUnsafeGuaranteedRef {
                        $0.admit(
                            batch.keyPointers[keyIndex]!,
                            signature: batch.signatures[keyIndex],
                            position: batch.positions[keyIndex],
                            originalLength: Int(length),
                            micros: micros,
                            cutoff: cutoff
                        )
                    }
                    switch verdict {
                    case .kept: break
                    case .keptTableFull: tableFull &+= 1
                    case .cut:
                        rejected[removed] = packet
                        removed += 1
                        cutCount &+= 1
                        cutBytes &+= UInt64(length)
                        continue
                    }
                }
                packets[kept] = packet
                kept += 1
            }
            start += chunk
        }
        if removed > 0 { CDPDK_rte_pktmbuf_free_bulk(rejected, UInt32(removed)) }
        let counters = self.counters
        if let duplicates {
            if duplicateCount > 0 { fastcapa_counter_add(&counters.pointee.duplicate, duplicateCount) }
            let evicted = duplicates._withUnsafeGuaranteedRef { $0.counters.evictedInWindow }
            fastcapa_counter_store(&counters.pointee.duplicate_evicted, evicted)
        }
        if let flows {
            if cutCount > 0 {
                fastcapa_counter_add(&counters.pointee.flow_cutoff, cutCount)
                fastcapa_counter_add(&counters.pointee.flow_cutoff_bytes, cutBytes)
            }
            if tableFull > 0 { fastcapa_counter_add(&counters.pointee.flow_table_full, tableFull) }
            let table = flows._withUnsafeGuaranteedRef { $0.counters }
            fastcapa_counter_store(&counters.pointee.flows_active, table.activeFlows)
            fastcapa_counter_store(&counters.pointee.flows_created, table.created)
            fastcapa_counter_store(&counters.pointee.flows_expired, table.expired)
        }
        return kept
    }

    /// The packet's flow (nil: untracked), from its first segment; a frame
    /// whose headers run past it is read whole into `headerScratch` first.
    @inline(__always)
    func flowKey(_ packet: OpaquePointer?) -> FlowKey? {
        let first = Int(CDPDK_rte_mbuf_data_len(packet))
        let whole = Int(CDPDK_rte_mbuf_pkt_len(packet))
        let data = UnsafeRawPointer(CDPDK_rte_pktmbuf_mtod(packet))
        if let key = FlowKey.parse(UnsafeRawBufferPointer(start: data, count: first)) { return key }
        guard whole > first else { return nil }
        let length = min(whole, Self.headerScratchSize)
        guard let copied = CDPDK_rte_pktmbuf_read(packet, 0, UInt32(length), headerScratch) else { return nil }
        return FlowKey.parse(UnsafeRawBufferPointer(start: copied, count: length))
    }

    /// The most bytes of a multi-segment frame read to find its flow: headers past
    /// them (hundreds of VLAN tags or extension headers) leave the frame untracked.
    static let headerScratchSize = 4096

    /// Writes each packet's capture time, epoch ns (the device's, when it
    /// stamped the packet; else `now`) and returns the packets' bytes.
    @inline(__always)
    private func stamp(
        _ packets: UnsafeMutablePointer<OpaquePointer?>,
        _ count: Int,
        at now: UInt64,
        _ device: inout DeviceTimestamp<EthDeviceClockSource>?,
        _ captureTimeField: Int32
    ) -> UInt64 {
        var bytes: UInt64 = 0
        device?.calibrate(ifDueAt: now)
        for index in 0..<count {
            let packet = packets[index]
            bytes &+= UInt64(CDPDK_rte_mbuf_pkt_len(packet))
            var captured = now
            if device != nil, CDPDK_rte_mbuf_ol_flags(packet) & device!.flag != 0 {
                captured = device!.nanos(CDPDK_RTE_MBUF_DYNFIELD_u64(packet, device!.fieldOffset))
            }
            CDPDK_RTE_MBUF_DYNFIELD_set_u64(packet, captureTimeField, captured)
        }
        return bytes
    }

    @inline(__always)
    func enqueue(_ ring: OpaquePointer, _ packets: UnsafeMutablePointer<OpaquePointer?>, _ count: Int) -> Int {
        packets.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: count) {
            Int(rte_ring_enqueue_burst(ring, $0, UInt32(count), nil))
        }
    }
}

/// What `ReceiveWorker.reduce` keeps for one chunk of up to `FlowTable.bulkLimit`
/// packets: their capture times and digests, their flow keys (and a pointer to
/// each, as rte_hash's bulk lookup takes them), the keys' hashes and positions,
/// and which key each packet has (-1: untracked). Allocated once per worker.
final class ReductionBatch: @unchecked Sendable {
    let micros: UnsafeMutablePointer<UInt64>
    let digests: UnsafeMutablePointer<UInt64>
    let keys: UnsafeMutablePointer<FlowKey>
    let keyPointers: UnsafeMutablePointer<UnsafeRawPointer?>
    let signatures: UnsafeMutablePointer<UInt32>
    let positions: UnsafeMutablePointer<Int32>
    let keyIndex: UnsafeMutablePointer<Int32>

    init() {
        let count = FlowTable.bulkLimit
        micros = .allocate(capacity: count)
        micros.initialize(repeating: 0, count: count)
        digests = .allocate(capacity: count)
        digests.initialize(repeating: 0, count: count)
        // Zeros are a valid key (it holds integers only); 64-byte aligned, a key a cache line.
        let keyBytes = count * MemoryLayout<FlowKey>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: keyBytes, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: keyBytes)
        keys = raw.bindMemory(to: FlowKey.self, capacity: count)
        keyPointers = .allocate(capacity: count)
        for index in 0..<count { (keyPointers + index).initialize(to: UnsafeRawPointer(keys + index)) }
        signatures = .allocate(capacity: count)
        signatures.initialize(repeating: 0, count: count)
        positions = .allocate(capacity: count)
        positions.initialize(repeating: FlowTable.unknownPosition, count: count)
        keyIndex = .allocate(capacity: count)
        keyIndex.initialize(repeating: -1, count: count)
    }

    deinit {
        micros.deallocate()
        digests.deallocate()
        keys.deallocate()
        keyPointers.deallocate()
        signatures.deallocate()
        positions.deallocate()
        keyIndex.deallocate()
    }
}
