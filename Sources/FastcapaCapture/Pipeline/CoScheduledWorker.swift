import CFastcapaShared
import CURCU

/// What one turn of a worker's loop did.
enum WorkerStep {
    case worked
    case idle
    /// The receive loop cannot go on until its ring has room.
    case needsRoom
    /// The loop is finished (receiving stopped; the transmit loop: the drain).
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
        var receiving = ReceiveWorker.LoopState(device: receive.deviceTimestamp)
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
                switch receive.step(&receiving) {
                case .worked: worked = true
                case .idle: break
                // No sleep: this turn's transmit step is what makes the room.
                case .needsRoom: receive.countRoomWaits(1)
                case .done: receiversDone = true
                }
            }
            switch transmit.step(&transmitting, receiversDone: receiversDone) {
            case .done: return 0
            case .worked: worked = true
            case .idle, .needsRoom: break
            }
            if worked { idle.reset() } else { idle.idle() }
        }
    }
}
