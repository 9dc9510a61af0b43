import CDPDK
import CURCU
import Glibc

/// What a polling lcore does after empty polls: spin for `spinPolls`, then
/// sleep for 1, 2, 4 ... up to `maxSleepMicros` µs. With `maxSleepMicros` 0 it
/// never sleeps (lowest latency, a full core per lcore). A sleeping RCU reader
/// goes offline so that it never holds up a grace period.
struct IdleBackoff {
    let spinPolls: Int
    let maxSleepMicros: UInt32
    let rcuReader: Bool
    private var emptyPolls = 0
    private var sleepMicros: UInt32 = 1

    init(spinPolls: Int, maxSleepMicros: Int, rcuReader: Bool) {
        self.spinPolls = spinPolls
        self.maxSleepMicros = UInt32(maxSleepMicros)
        self.rcuReader = rcuReader
    }

    @inline(__always)
    mutating func reset() {
        emptyPolls = 0
        sleepMicros = 1
    }

    @inline(__always)
    mutating func idle() {
        emptyPolls &+= 1
        if maxSleepMicros == 0 || emptyPolls <= spinPolls {
            CDPDK_rte_pause()
            return
        }
        if rcuReader { CURCU_rcu_thread_offline() }
        usleep(sleepMicros)
        if rcuReader { CURCU_rcu_thread_online() }
        sleepMicros = min(sleepMicros * 2, maxSleepMicros)
    }
}
