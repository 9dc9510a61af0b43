import CDPDK
import Glibc
import Synchronization

/// When a flow's packets stop being kept: after `packets` packets, once it has
/// `bytes` bytes (original lengths), or both (a packet is kept only while every
/// set limit allows it). A flow is forgotten when a packet arrives more than
/// `timeoutMicros` after the flow's latest packet.
package struct FlowCutoff: Sendable, Equatable {
    package var packets: UInt64?
    package var bytes: UInt64?
    package var timeoutMicros: UInt64

    package init(packets: UInt64? = nil, bytes: UInt64? = nil, timeoutMicros: UInt64) {
        self.packets = packets
        self.bytes = bytes
        self.timeoutMicros = timeoutMicros
    }

    /// The cutoff in words, e.g. "first 20 packets and 65536 bytes of each flow, 120 s timeout".
    package var summary: String {
        let limits = [packets.map { "\($0) packets" }, bytes.map { "\($0) bytes" }].compactMap { $0 }
        let seconds = Double(timeoutMicros) / 1_000_000
        let timeout = seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
        return "first \(limits.joined(separator: " and ")) of each flow, \(timeout) timeout"
    }

    /// Whether a packet is kept, given its flow's totals before it.
    @inline(__always)
    package func allows(packetsBefore: UInt64, bytesBefore: UInt64) -> Bool {
        if let packets, packetsBefore >= packets { return false }
        if let bytes, bytesBefore >= bytes { return false }
        return true
    }
}

/// What the flow table decided for one tracked packet.
package enum FlowVerdict: Sendable, Equatable {
    /// Its flow's totals before it are within the cutoff.
    case kept
    /// Its flow already reached the cutoff.
    case cut
    /// It starts a flow the table has no room for: kept, and not tracked.
    case keptTableFull
}

/// What a flow table has done since it was created.
package struct FlowTableCounters: Sendable, Equatable {
    /// Flows in the table now.
    package var activeFlows: UInt64 = 0
    /// Flows started: new keys, and keys seen again after their timeout.
    package var created: UInt64 = 0
    /// Flows forgotten after their timeout: found by their next packet, or swept to make room.
    package var expired: UInt64 = 0
    /// Packets of new flows that found no room (kept, untracked).
    package var tableFull: UInt64 = 0

    package init() {}
}

/// One receive queue's flows: DPDK's `rte_hash` (cuckoo hashing) maps a
/// `FlowKey` to a position, and an array allocated beside it at start holds each
/// position's packets, bytes and latest capture time. One writer, the receive
/// lcore, so the table has no concurrency flags and takes no locks; `admit`
/// allocates nothing.
///
/// The table is created with the extendable-bucket flag, so exactly `capacity`
/// flows fit whatever their hashes: a flow is refused only when every entry is
/// taken. Keys are hashed with `rte_hash_crc` (the CRC32 instruction, eight
/// bytes a step, and DPDK's own default on x86 and Arm; `rte_jhash` mixes
/// twelve bytes a step with shifts and adds), once per packet: the hash is
/// passed to both the lookup and the add.
///
/// Expired flows stay in the table until their key is seen again or room is
/// needed: when a new flow finds the table full, a sweep from a cursor that
/// persists across calls deletes the expired flows among at most
/// `sweepBudget` entries, then the add is tried once more. Packets of known
/// flows never pay for a sweep, and a full table of live flows costs a new
/// flow's packet at most `sweepBudget` entries; a sweep per packet would charge
/// every packet for reclaim most tables never need.
///
/// Not thread-safe: it belongs to one receive lcore at a time.
package final class FlowTable: @unchecked Sendable {
    /// A flow's totals and latest capture time, at its `rte_hash` position.
    struct FlowState {
        var packets: UInt64
        var bytes: UInt64
        var latestMicros: UInt64
    }

    /// The fewest entries `rte_hash` accepts (one bucket).
    package static let minimumCapacity = 8
    /// The most entries `rte_hash` accepts.
    package static let maximumCapacity = 1 << 30
    /// The most entries one reclaim sweep examines.
    package static let sweepBudget: UInt32 = 64

    /// Flows the table holds at most.
    package let capacity: Int
    /// What the table has done; still readable after `release`.
    package var counters: FlowTableCounters { tallies.pointee }
    /// The counters, behind a pointer: a stored property of a class is checked
    /// for exclusive access at run time (a runtime call per increment).
    private let tallies: UnsafeMutablePointer<FlowTableCounters>

    private var table: OpaquePointer?
    private var states: UnsafeMutablePointer<FlowState>?
    /// How many states there are: every position rte_hash can return.
    private let positionCount: Int
    /// What `admit` keeps between calls, behind a pointer (no exclusivity check per packet): where the
    /// next sweep starts (`rte_hash_iterate`'s position), and whether a flow was added or deleted since
    /// the last `lookUp` (its positions may then be stale).
    private struct BurstState {
        var sweepCursor: UInt32 = 0
        var changed = false
    }
    private let burst: UnsafeMutablePointer<BurstState>

    private static let serial = Atomic<UInt32>(0)
    /// The hash's seed, the same for rte_hash's own hashing (its deletes) and for `admit`'s.
    private static let hashSeed: UInt32 = 0

    /// A table for `capacity` flows, its memory on NUMA `socket` (-1 for any).
    /// `queue` names it in DPDK and in errors.
    package init(capacity: Int, socket: Int32, queue: Int) throws(CaptureError) {
        guard capacity >= Self.minimumCapacity && capacity <= Self.maximumCapacity else {
            throw CaptureError(
                "flow table size \(capacity) is out of range",
                fix: "Use --flow-table-size between \(Self.minimumCapacity) and \(Self.maximumCapacity)"
            )
        }
        self.capacity = capacity
        let mebibytes = (Self.approximateBytes(capacity: capacity) + (1 << 20) - 1) >> 20
        let place = socket < 0 ? "" : " on socket \(socket)"
        let fix =
            "A flow table of \(capacity) entries takes about \(mebibytes) MiB of DPDK memory\(place) per receive "
            + "queue: lower --flow-table-size, or give EAL more memory (-m, --socket-mem or hugepages)"
        // rte_hash names are unique per process (32 bytes at most, with a 3-byte prefix for its ring).
        let name = "flows-q\(queue)-\(Self.serial.add(1, ordering: .relaxed).newValue)"
        var parameters = rte_hash_parameters()
        parameters.entries = UInt32(capacity)
        parameters.key_len = UInt32(FlowKey.byteCount)
        parameters.hash_func = CDPDK_rte_hash_crc
        parameters.hash_func_init_val = Self.hashSeed
        parameters.socket_id = socket
        parameters.extra_flag = UInt8(RTE_HASH_EXTRA_FLAGS_EXT_TABLE)
        let created = name.withCString { name in
            parameters.name = name
            return rte_hash_create(&parameters)
        }
        guard let created else {
            throw CaptureError(
                "cannot create the flow table of receive queue \(queue): \(CaptureError.dpdkReason())",
                fix: fix
            )
        }
        // Positions go up to rte_hash_max_key_id (the entries asked for, without a per-lcore cache).
        let positions = Int(rte_hash_max_key_id(created)) + 1
        guard positions > 0,
            let memory = rte_zmalloc_socket(
                "flow-states",
                positions * MemoryLayout<FlowState>.stride,
                UInt32(MemoryLayout<FlowState>.alignment),
                socket
            )
        else {
            rte_hash_free(created)
            throw CaptureError(
                "cannot allocate the flow states of receive queue \(queue) "
                    + "(\(positions * MemoryLayout<FlowState>.stride) bytes)",
                fix: fix
            )
        }
        table = created
        positionCount = positions
        // Last, so that a refusal above leaves nothing to free.
        tallies = .allocate(capacity: 1)
        tallies.initialize(to: FlowTableCounters())
        burst = .allocate(capacity: 1)
        burst.initialize(to: BurstState())
        states = memory.bindMemory(to: FlowState.self, capacity: positions)
    }

    deinit {
        release()
        tallies.deallocate()
        burst.deallocate()
    }

    /// Frees the table and its states now (`deinit` does otherwise); `admit` must not be called after.
    package func release() {
        if let table { rte_hash_free(table) }
        if let states { rte_free(states) }
        table = nil
        states = nil
    }

    /// The most keys one `lookUp` takes (rte_hash's bulk limit).
    package static let bulkLimit = Int(RTE_HASH_LOOKUP_BULK_MAX)
    /// A position `admit` must look up itself (no `lookUp` gave one).
    package static let unknownPosition = Int32.min

    /// Hashes `count` keys (at most `bulkLimit`) into `signatures` and looks them
    /// up together, writing each one's position (negative: not in the table);
    /// rte_hash loads their buckets ahead of use, and the states of the flows
    /// found start loading here. Then `admit` each, in order, with its position.
    /// Allocates nothing.
    package func lookUp(
        _ keys: UnsafeMutablePointer<UnsafeRawPointer?>,
        count: Int,
        signatures: UnsafeMutablePointer<UInt32>,
        positions: UnsafeMutablePointer<Int32>
    ) {
        guard let table, let states else { preconditionFailure("FlowTable.lookUp after release") }
        for index in 0..<count {
            signatures[index] = CDPDK_rte_hash_crc(keys[index], UInt32(FlowKey.byteCount), Self.hashSeed)
        }
        _ = rte_hash_lookup_with_hash_bulk(table, keys, signatures, UInt32(count), positions)
        for index in 0..<count where positions[index] >= 0 {
            CDPDK_rte_prefetch0(states + Int(positions[index]))
        }
        burst.pointee.changed = false
    }

    /// Counts one tracked packet of `key`'s flow, `originalLength` bytes captured
    /// at `micros` (epoch µs), and says whether it is kept: the flow's totals
    /// before it must be within `cutoff`. A packet more than the timeout after its
    /// flow's latest starts the flow again; an earlier one continues it.
    package func admit(_ key: FlowKey, originalLength: Int, micros: UInt64, cutoff: FlowCutoff) -> FlowVerdict {
        var key = key
        return withUnsafeBytes(of: &key) { bytes in
            let signature = CDPDK_rte_hash_crc(bytes.baseAddress!, UInt32(FlowKey.byteCount), Self.hashSeed)
            return admit(
                bytes.baseAddress!,
                signature: signature,
                position: Self.unknownPosition,
                originalLength: originalLength,
                micros: micros,
                cutoff: cutoff
            )
        }
    }

    /// `admit` for a key `lookUp` hashed and looked up: `position` is what it found
    /// (still right unless a flow was added or deleted since, which this checks), or
    /// `unknownPosition`.
    @inline(__always)
    package func admit(
        _ key: UnsafeRawPointer,
        signature: UInt32,
        position: Int32,
        originalLength: Int,
        micros: UInt64,
        cutoff: FlowCutoff
    ) -> FlowVerdict {
        guard let table, let states else { preconditionFailure("FlowTable.admit after release") }
        let found =
            position != Self.unknownPosition && !burst.pointee.changed
            ? position : rte_hash_lookup_with_hash(table, key, signature)
        let state: UnsafeMutablePointer<FlowState>
        if found >= 0 {
            state = states + Int(found)
            if micros > state.pointee.latestMicros && micros - state.pointee.latestMicros > cutoff.timeoutMicros {
                tallies.pointee.expired &+= 1
                tallies.pointee.created &+= 1
                state.pointee = FlowState(packets: 0, bytes: 0, latestMicros: micros)
            }
        } else {
            burst.pointee.changed = true
            var added = rte_hash_add_key_with_hash(table, key, signature)
            if added == -ENOSPC && sweep(table, states, micros: micros, timeoutMicros: cutoff.timeoutMicros) {
                added = rte_hash_add_key_with_hash(table, key, signature)
            }
            guard added >= 0 else {
                tallies.pointee.tableFull &+= 1
                return .keptTableFull
            }
            tallies.pointee.activeFlows &+= 1
            tallies.pointee.created &+= 1
            assert(Int(added) < positionCount, "rte_hash returned a position past rte_hash_max_key_id")
            state = states + Int(added)
            state.pointee = FlowState(packets: 0, bytes: 0, latestMicros: micros)
        }
        let kept = cutoff.allows(packetsBefore: state.pointee.packets, bytesBefore: state.pointee.bytes)
        state.pointee.packets &+= 1
        state.pointee.bytes &+= UInt64(truncatingIfNeeded: originalLength)
        if micros > state.pointee.latestMicros { state.pointee.latestMicros = micros }
        return kept ? .kept : .cut
    }

    /// Deletes the expired flows among the next `sweepBudget` entries from the
    /// cursor (wrapping once at the end); whether any was deleted.
    private func sweep(
        _ table: OpaquePointer,
        _ states: UnsafeMutablePointer<FlowState>,
        micros: UInt64,
        timeoutMicros: UInt64
    ) -> Bool {
        var reclaimed = false
        var examined: UInt32 = 0
        var wrapped = false
        var key: UnsafeRawPointer?
        var data: UnsafeMutableRawPointer?
        while examined < Self.sweepBudget {
            let position = rte_hash_iterate(table, &key, &data, &burst.pointee.sweepCursor)
            guard position >= 0, let key else {
                burst.pointee.sweepCursor = 0
                if wrapped { break }
                wrapped = true
                continue
            }
            examined += 1
            let latest = states[Int(position)].latestMicros
            if micros > latest && micros - latest > timeoutMicros && rte_hash_del_key(table, key) >= 0 {
                tallies.pointee.activeFlows &-= 1
                tallies.pointee.expired &+= 1
                reclaimed = true
            }
        }
        return reclaimed
    }

    /// About how many bytes of DPDK memory a table of `capacity` flows takes, as
    /// rte_hash lays it out (keys with their data pointer, main and extendable
    /// buckets of eight, the rings of free slots) plus the flow states.
    package static func approximateBytes(capacity: Int) -> Int {
        let keySlots = capacity + 1
        let buckets = max(Int(UInt32(capacity).nextPowerOfTwo) / 8, 1)
        let keys = keySlots * (8 + FlowKey.byteCount)
        let bucketBytes = 2 * buckets * 64
        let rings = Int(UInt32(keySlots).nextPowerOfTwo) * 4 + Int(UInt32(buckets + 1).nextPowerOfTwo) * 4
        return keys + bucketBytes + rings + keySlots * MemoryLayout<FlowState>.stride
    }
}

extension UInt32 {
    /// The smallest power of two at least `self` (1 for 0).
    fileprivate var nextPowerOfTwo: UInt32 {
        self <= 1 ? 1 : 1 << (32 - (self - 1).leadingZeroBitCount)
    }
}
