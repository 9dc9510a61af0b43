import CDPDK
import CFastcapaShared
import FastcapaKafka

/// When a bundle closes (`--bundle-packets`, `--bundle-bytes`, `--bundle-linger-us`).
package struct BundleLimits: Sendable, Equatable {
    package var packets: Int
    package var bytes: Int
    /// The linger in TSC ticks.
    package var lingerTicks: UInt64

    package init(packets: Int, bytes: Int, lingerTicks: UInt64) {
        self.packets = packets
        self.bytes = bytes
        self.lingerTicks = lingerTicks
    }

    /// An open bundle of `packets` packets and `used` bytes must close before a
    /// record of `recordLength` bytes goes in: it is full, or the record does not fit.
    @inline(__always)
    package func closesBefore(packets: Int, used: Int, recordLength: Int) -> Bool {
        packets >= self.packets || used + recordLength > bytes
    }

    /// A bundle closes once it holds its most packets.
    @inline(__always)
    package func isFull(packets: Int) -> Bool { packets >= self.packets }

    /// A bundle opened at `opened` (TSC) has waited its linger at `now`.
    @inline(__always)
    package func hasLingered(opened: UInt64, now: UInt64) -> Bool { now &- opened >= lingerTicks }
}

/// One open bundle of a transmit worker.
struct OpenBundle {
    /// Its descriptor (nil: no bundle open in this slot).
    var bundle: UnsafeMutablePointer<fastcapa_bundle>?
    var buffer: UnsafeMutableRawPointer?
    var used = 0
    var packets = 0
    var truncated = 0
    /// The first packet's capture time (epoch ns): the key, and the record time under `capture`.
    var firstNanos: UInt64 = 0
    /// When its first packet went in (TSC).
    var openedTicks: UInt64 = 0
    /// Its place in the list of open slots.
    var listPosition = 0
}

/// A transmit worker's bundling state, all made at start: the pool, the
/// argument vector, a table of open bundles (one per partition under `flow`,
/// one otherwise) and the list of slots with an open bundle (the linger check
/// walks it, not the table). Only the worker's lcore touches it.
final class Bundler {
    let pool: BundlePool
    let arguments: BundleArguments
    let limits: BundleLimits
    let slots: UnsafeMutablePointer<OpenBundle>
    let slotCount: Int
    /// Slots with an open bundle, [0, openCount).
    let open: UnsafeMutablePointer<Int>
    /// A one-packet bundle (a flow whose partition has no slot): produced at
    /// once, or kept here for the successor while the producer is down.
    let lone: UnsafeMutablePointer<OpenBundle>
    var openCount = 0
    /// No open bundle lingers past this (TSC): until then the linger check is one comparison.
    var nextLingerCheck = UInt64.max

    /// Partitions beyond which `flow` bundles no more: a packet of a partition
    /// at or past it goes in a bundle of its own (still to its flow's partition).
    static let flowSlots = 4096

    init(settings: CaptureSettings, headers: [(name: String, value: String)]) throws {
        pool = try BundlePool(
            count: BundlePool.bufferCount(bufferSize: settings.bundleBytes, packets: settings.bundlePackets),
            bufferSize: settings.bundleBytes
        )
        arguments = BundleArguments(headers: headers)
        let ticksPerMicro = max(1, rte_get_tsc_hz() / 1_000_000)
        limits = BundleLimits(
            packets: settings.bundlePackets,
            bytes: settings.bundleBytes,
            lingerTicks: UInt64(settings.bundleLingerMicros) * ticksPerMicro
        )
        slotCount = settings.partitioning == .flow ? Self.flowSlots : 1
        slots = .allocate(capacity: slotCount)
        slots.initialize(repeating: OpenBundle(), count: slotCount)
        open = .allocate(capacity: slotCount)
        open.initialize(repeating: 0, count: slotCount)
        lone = .allocate(capacity: 1)
        lone.initialize(to: OpenBundle())
    }

    deinit {
        slots.deallocate()
        open.deallocate()
        lone.deallocate()
    }

    /// Whether any packet waits in a bundle not yet produced.
    var holdsPackets: Bool { openCount > 0 || lone.pointee.bundle != nil }

    /// Lists `slot` as open (its first packet just went in at `now`).
    @inline(__always)
    func opened(_ slot: Int, now: UInt64) {
        slots[slot].openedTicks = now
        slots[slot].listPosition = openCount
        open[openCount] = slot
        openCount += 1
        nextLingerCheck = min(nextLingerCheck, now &+ limits.lingerTicks)
    }

    /// Empties `slot` and takes it off the open list.
    @inline(__always)
    func closed(_ slot: Int) {
        let position = slots[slot].listPosition
        openCount -= 1
        let last = open[openCount]
        open[position] = last
        slots[last].listPosition = position
        slots[slot] = OpenBundle()
    }
}

extension TransmitWorker {
    /// Copies packets [start, end) of the burst into their open bundles (chains
    /// gathered, the snap length applied, cut frames dropped as malformed), closing
    /// and producing each bundle that fills. Returns the first packet it could not
    /// place because the producer failed fatally (`end` when none): the bundle
    /// that would have taken it stays open for the successor.
    func produceBundled(
        _ bundler: Bundler,
        _ start: Int,
        _ end: Int,
        _ record: WorkerRecord,
        retries: inout Int,
        giveUp: Bool
    ) -> Int {
        guard produceLone(bundler, record, retries: &retries, giveUp: giveUp) else { return start }
        var index = start
        while index < end {
            let packet = packets[index]
            // Chains gathered; a frame that is short counted as malformed (as `produceOne`).
            guard let (payload, length, captured) = wholeFrame(packet, record) else {
                index += 1
                continue
            }
            let recordLength = MessageContract.Bundle.recordLength(length)
            if recordLength > bundler.limits.bytes {
                // No bundle holds it (validation keeps the snap length below
                // --bundle-bytes; this guards the lcore all the same).
                fastcapa_counter_add(&counters.pointee.too_large_drops, 1)
                index += 1
                continue
            }
            // The slot: the flow's partition (the same hash and modulo as a
            // single message's), or the one slot. Until the partition count is
            // known, and past the table, a flow's packet goes in a bundle of its own.
            var slot = 0
            var alone = false
            var hint: UInt64 = 0
            if partitioning == .flow {
                let flow = self.hint(packet, payload, length, batch: 0)
                let partitions = record.producer.knownPartitions
                let partition = partitions > 0 ? flow % partitions : UInt.max
                if partition < UInt(bundler.slotCount) {
                    slot = Int(partition)
                    hint = UInt64(partition)
                } else {
                    slot = -1
                    alone = true
                    hint = UInt64(flow)
                }
            }
            if !alone, bundler.slots[slot].bundle != nil,
                bundler.limits.closesBefore(
                    packets: bundler.slots[slot].packets,
                    used: bundler.slots[slot].used,
                    recordLength: recordLength
                )
            {
                guard closeBundle(bundler, slot, record, retries: &retries, giveUp: giveUp) else { return index }
            }
            let captureNanos = CDPDK_RTE_MBUF_DYNFIELD_u64(packet, captureTimeField)
            let target = alone ? bundler.lone : bundler.slots + slot
            if target.pointee.bundle == nil {
                guard let bundle = takeBundle(bundler, record, retries: &retries) else {
                    // Every buffer stayed taken past the budget of waits: as a full queue.
                    fastcapa_counter_add(&counters.pointee.queue_full_drops, 1)
                    index += 1
                    continue
                }
                bundle.pointee.hint = hint
                target.pointee.bundle = bundle
                target.pointee.buffer = bundler.pool.buffer(bundle)
                target.pointee.firstNanos = captureNanos
                if !alone { bundler.opened(slot, now: CDPDK_rte_rdtsc()) }
            }
            _ = MessageContract.Bundle.append(
                micros: captureNanos / 1000,
                originalLength: captured,
                frame: payload,
                length: length,
                into: target.pointee.buffer!,
                capacity: bundler.limits.bytes,
                used: &target.pointee.used
            )
            target.pointee.packets += 1
            if length < captured { target.pointee.truncated += 1 }
            index += 1
            if alone {
                guard produceLone(bundler, record, retries: &retries, giveUp: giveUp) else { return index }
            } else if bundler.limits.isFull(packets: target.pointee.packets) {
                // Full: sent now. Kept for the successor if the producer is down
                // (the next packet, or the linger, tries again).
                _ = closeBundle(bundler, slot, record, retries: &retries, giveUp: giveUp)
            }
        }
        return end
    }

    /// A free bundle, waiting for one as for room in librdkafka's queue while
    /// the burst's budget of waits lasts; nil past it.
    @inline(__always)
    func takeBundle(
        _ bundler: Bundler,
        _ record: WorkerRecord,
        retries: inout Int
    ) -> UnsafeMutablePointer<fastcapa_bundle>? {
        while true {
            if let bundle = bundler.pool.take() { return bundle }
            guard retries > 0 && fastcapa_flag_load(control.flags + WorkerControl.abandon) == 0 else { return nil }
            retries -= 1
            fastcapa_counter_add(&counters.pointee.queue_full_retries, 1)
            record.producer.waitForQueueRoom(servingReports: deliveryReports == .lcore)
        }
    }

    /// Closes the bundle in `slot` and produces it. False when the producer has
    /// failed fatally: the bundle then stays open, for the successor.
    @inline(__always)
    func closeBundle(
        _ bundler: Bundler,
        _ slot: Int,
        _ record: WorkerRecord,
        retries: inout Int,
        giveUp: Bool
    ) -> Bool {
        guard produceBundle(bundler, bundler.slots + slot, record, retries: &retries, giveUp: giveUp) else {
            return false
        }
        bundler.closed(slot)
        return true
    }

    /// Produces the lone bundle, if one waits. False when the producer has failed
    /// fatally: it then stays, for the successor.
    @inline(__always)
    func produceLone(_ bundler: Bundler, _ record: WorkerRecord, retries: inout Int, giveUp: Bool) -> Bool {
        guard bundler.lone.pointee.bundle != nil else { return true }
        guard produceBundle(bundler, bundler.lone, record, retries: &retries, giveUp: giveUp) else { return false }
        bundler.lone.pointee = OpenBundle()
        return true
    }

    /// Produces `open`'s bundle, or counts each of its packets by why it could
    /// not (its buffer handed back). False, the bundle left as it is, when the
    /// producer has failed fatally.
    @inline(__always)
    func produceBundle(
        _ bundler: Bundler,
        _ open: UnsafeMutablePointer<OpenBundle>,
        _ record: WorkerRecord,
        retries: inout Int,
        giveUp: Bool
    ) -> Bool {
        let bundle = open.pointee.bundle!
        let packets = open.pointee.packets
        bundle.pointee.packets = UInt32(packets)
        bundle.pointee.bytes = UInt64(open.pointee.used)
        if partitioning == .roundRobin {
            bundle.pointee.hint = UInt64(batchSequence)
            batchSequence &+= 1
        }
        singleKey.pointee = MessageContract.key(nanos: open.pointee.firstNanos)
        let millis = stampsCaptureTime ? MessageContract.recordMillis(nanos: open.pointee.firstNanos) : 0
        while true {
            guard
                let refusal = record.producer.produce(
                    bundle: bundle,
                    value: UnsafeRawPointer(open.pointee.buffer!),
                    length: open.pointee.used,
                    key: singleKey,
                    partition: -1,
                    timestampMillis: millis,
                    arguments: bundler.arguments
                )
            else {
                countProduced(packets, bytes: open.pointee.used, truncated: open.pointee.truncated)
                fastcapa_counter_add(&counters.pointee.bundles_produced, 1)
                return true
            }
            switch settle(refusal, retries: &retries, record, giveUp: giveUp, packets: packets) {
            case .retry: continue
            case .keepForSuccessor: return false
            case .dropped:
                bundler.pool.give(bundle)
                return true
            }
        }
    }

    /// Closes the bundles that have waited their linger. False when the producer
    /// failed fatally meanwhile (what is left waits for the successor).
    @inline(__always)
    func closeLingering(_ bundler: Bundler, _ record: WorkerRecord, giveUp: Bool) -> Bool {
        var retries = record.queueFullRetries
        guard produceLone(bundler, record, retries: &retries, giveUp: giveUp) else { return false }
        let now = CDPDK_rte_rdtsc()
        guard now >= bundler.nextLingerCheck else { return true }
        var next = UInt64.max
        var position = 0
        while position < bundler.openCount {
            let slot = bundler.open[position]
            let opened = bundler.slots[slot].openedTicks
            if bundler.limits.hasLingered(opened: opened, now: now) {
                guard closeBundle(bundler, slot, record, retries: &retries, giveUp: giveUp) else {
                    bundler.nextLingerCheck = now
                    return false
                }
                // The last open slot moved into this position.
                continue
            }
            next = min(next, opened &+ bundler.limits.lingerTicks)
            position += 1
        }
        bundler.nextLingerCheck = next
        return true
    }

    /// Closes every open bundle (the drain). False when the producer failed fatally.
    func closeAllBundles(_ bundler: Bundler, _ record: WorkerRecord, giveUp: Bool) -> Bool {
        var retries = record.queueFullRetries
        guard produceLone(bundler, record, retries: &retries, giveUp: giveUp) else { return false }
        while bundler.openCount > 0 {
            guard closeBundle(bundler, bundler.open[0], record, retries: &retries, giveUp: giveUp) else {
                return false
            }
        }
        bundler.nextLingerCheck = .max
        return true
    }

    /// After the shutdown flush: how far the free bundle buffers are from the
    /// pool's count (negative: one handed back twice); 0 when not bundling.
    package func bundleBuffersAstray() -> Int {
        guard let bundler else { return 0 }
        return bundler.pool.count - bundler.pool.freeCount()
    }

    /// The drain timeout ran out: counts each packet of the open bundles as
    /// drain_timeout and hands their buffers back.
    func abandonBundles(_ bundler: Bundler) {
        if let bundle = bundler.lone.pointee.bundle {
            fastcapa_counter_add(&counters.pointee.drain_timeout_drops, UInt64(bundler.lone.pointee.packets))
            bundler.pool.give(bundle)
            bundler.lone.pointee = OpenBundle()
        }
        while bundler.openCount > 0 {
            let slot = bundler.open[0]
            fastcapa_counter_add(&counters.pointee.drain_timeout_drops, UInt64(bundler.slots[slot].packets))
            bundler.pool.give(bundler.slots[slot].bundle!)
            bundler.closed(slot)
        }
        bundler.nextLingerCheck = .max
    }
}
