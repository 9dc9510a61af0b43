import CDPDK
import CFastcapaShared

/// Each worker lcore's heartbeat: a counter of its loop's turns, in a cache line of
/// its own, written by the lcore (a relaxed store per turn, not per packet) and read
/// by the sampler, which tells systemd's watchdog the probe is alive only while every
/// running lcore's count moves (`LcoreWatchdog`).
final class Heartbeats: @unchecked Sendable {
    /// Which lcore beats in which slot, and what it runs there.
    private(set) var lcores: [(lcore: UInt32, loop: String)] = []
    private let block: CounterBlock<fastcapa_heartbeat>

    /// Where a worker that no pipeline launched (benchmarks, tests) beats: never read.
    nonisolated(unsafe) static let unwatched: UnsafeMutablePointer<UInt64> = {
        let word = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        word.initialize(to: 0)
        return word
    }()

    init(capacity: Int) {
        block = CounterBlock(count: capacity)
    }

    /// The slot of the next lcore launched.
    func slot(lcore: UInt32, loop: String) -> UnsafeMutablePointer<UInt64> {
        precondition(lcores.count < block.count, "more lcores launched than heartbeats allocated")
        lcores.append((lcore, loop))
        return UnsafeMutableRawPointer(block[lcores.count - 1]).assumingMemoryBound(to: UInt64.self)
    }

    /// Each launched lcore's count, and whether its loop is still running (it has not returned).
    func sample() -> [LcoreProgress] {
        lcores.enumerated().map { index, entry in
            let loops = UnsafeMutableRawPointer(block[index]).assumingMemoryBound(to: UInt64.self)
            return LcoreProgress(
                lcore: entry.lcore,
                loop: entry.loop,
                loops: fastcapa_counter_load(loops),
                running: rte_eal_get_lcore_state(entry.lcore) == RUNNING
            )
        }
    }
}

/// One worker lcore's heartbeat, as the sampler read it.
package struct LcoreProgress: Sendable, Equatable {
    package var lcore: UInt32
    /// What it runs: `receive port 0 queue 0`, `transmit worker 1`, or both co-scheduled.
    package var loop: String
    /// Turns of its loop so far.
    package var loops: UInt64
    /// False once its loop has returned (the drain): a stopped loop is not a stuck one.
    package var running: Bool

    package init(lcore: UInt32, loop: String, loops: UInt64, running: Bool) {
        self.lcore = lcore
        self.loop = loop
        self.loops = loops
        self.running = running
    }
}
