import CDPDK
import CFastcapaShared
import CURCU

/// What one turn of a worker's loop did.
enum WorkerStep {
    case worked
    case idle
    /// The transmit loop is finished (the drain).
    case done
}

/// A queue's receive and transmit loops on one lcore, when the lcore map gives
/// both the same single CPU: each turn receives a burst into the ring and
/// produces a burst from it, so the two take turns without the kernel (two
/// lcores on one CPU hand it over through `usleep` and wake-ups). Still through
/// the ring, still lock-free; the counters are the two workers' own, so the
/// accounting is the same as with two lcores.
///
/// A full ring (librdkafka behind) pauses receiving, instead of sleeping, until
/// `RingRoomWait.resumeRoom` is free again: under `--ring-full wait` the refused
/// packets wait in the receive worker's burst; under `drop` they are counted and
/// receiving resumes at that room or after `RingRoomWait.longestDropWaitMicros`,
/// as on a receive lcore of its own. Once receiving has stopped the loop drains
/// the ring and returns, so the pipeline's drain joins it as a receive lcore.
final class CoScheduledWorker: @unchecked Sendable {
    let receive: ReceiveWorker
    let transmit: TransmitWorker
    /// The lcore's heartbeat (set by the pipeline before launch): one per turn of the loop.
    var heartbeat = Heartbeats.unwatched

    init(receive: ReceiveWorker, transmit: TransmitWorker) {
        self.receive = receive
        self.transmit = transmit
    }

    /// The lcore entry point: `arg` is an unretained `CoScheduledWorker`.
    static let entry: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { arg in
        Unmanaged<CoScheduledWorker>.fromOpaque(arg!).takeUnretainedValue().run()
    }

    func run() -> Int32 {
        CURCU_rcu_register_thread()
        defer { CURCU_rcu_unregister_thread() }
        let stop = receive.control.flags + WorkerControl.stopReceiving
        var receiving = ReceiveWorker.CoScheduledState(ring: receive.ring)
        var transmitting = TransmitWorker.LoopState()
        var idle = IdleBackoff(
            spinPolls: receive.idleSpinPolls,
            maxSleepMicros: receive.idleSleepMaxMicros,
            rcuReader: true
        )
        var receiversDone = false
        let heartbeat = self.heartbeat
        while true {
            fastcapa_counter_add(heartbeat, 1)
            // Holds no filter or producer record from the last turn.
            CURCU_rcu_quiescent_state()
            var worked = false
            if !receiversDone {
                if fastcapa_flag_load(stop) != 0 && !receiving.holdsPackets {
                    receiversDone = true
                } else {
                    worked = receive.coScheduledStep(&receiving, stopped: fastcapa_flag_load(stop) != 0)
                }
            }
            switch transmit.step(&transmitting, receiversDone: receiversDone) {
            case .done: return 0
            case .worked: worked = true
            case .idle: break
            }
            if worked { idle.reset() } else { idle.idle() }
        }
    }
}

extension ReceiveWorker {
    /// What the co-scheduled receive loop keeps between turns.
    struct CoScheduledState {
        var clock = CaptureClock<TscTimeSource>()
        /// Packets [pendingStart, pendingEnd) of `packets` wait for ring room (`--ring-full wait`).
        var pendingStart = 0
        var pendingEnd = 0
        /// Under `drop`: when (TSC) receiving paused for a full ring; 0 while it runs.
        var pausedSince: UInt64 = 0
        let resumeRoom: Int
        let longestPauseTicks: UInt64

        init(ring: OpaquePointer) {
            resumeRoom = RingRoomWait.resumeRoom(capacity: Int(rte_ring_get_capacity(ring)))
            longestPauseTicks = RingRoomWait.longestDropWaitMicros * max(1, rte_get_tsc_hz() / 1_000_000)
        }

        var holdsPackets: Bool { pendingEnd > pendingStart }
    }

    /// One receive turn of a co-scheduled lcore: enqueues the packets a full
    /// ring refused (`--ring-full wait`), or receives a burst unless receiving
    /// is paused for ring room or `stopped`. Never sleeps. Returns whether it
    /// moved packets.
    @inline(__always)
    func coScheduledStep(_ state: inout CoScheduledState, stopped: Bool) -> Bool {
        let counters = self.counters
        if state.holdsPackets {
            let left = state.pendingEnd - state.pendingStart
            if fastcapa_flag_load(control.flags + WorkerControl.abandon) != 0 {
                // The drain gave up on the backlog: count it.
                CDPDK_rte_pktmbuf_free_bulk(packets + state.pendingStart, UInt32(left))
                fastcapa_counter_add(&counters.pointee.ring_full_drops, UInt64(left))
                state.pendingStart = 0
                state.pendingEnd = 0
                return true
            }
            if Int(rte_ring_free_count(ring)) < min(left, state.resumeRoom) {
                fastcapa_counter_add(&counters.pointee.ring_full_waits, 1)
                return false
            }
            let sent = enqueue(ring, packets + state.pendingStart, left)
            fastcapa_counter_add(&counters.pointee.enqueued, UInt64(sent))
            state.pendingStart += sent
            if !state.holdsPackets {
                state.pendingStart = 0
                state.pendingEnd = 0
            }
            return sent > 0
        }
        if stopped { return false }
        if state.pausedSince != 0 {
            if Int(rte_ring_free_count(ring)) < state.resumeRoom
                && CDPDK_rte_rdtsc() &- state.pausedSince < state.longestPauseTicks
            {
                fastcapa_counter_add(&counters.pointee.ring_full_waits, 1)
                return false
            }
            state.pausedSince = 0
        }
        guard let count = receiveBurst(&state.clock) else { return false }
        if count == 0 { return true }
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
        return true
    }
}
