import CURCU
import FastcapaCapture
import Foundation
import Glibc

// Micro-benchmarks of the calls the hot loops make per burst, as ratios to a
// baseline measured in the same process (this host's clock speed varies run to
// run; ratios within one run do not). Run: swift run -c release fastcapa-microbench

/// Nanoseconds per iteration of `body`, the median of `rounds` rounds.
@inline(never)
func measure(_ iterations: Int = 20_000_000, rounds: Int = 7, _ body: (Int) -> Void) -> Double {
    var samples: [Double] = []
    for _ in 0..<rounds {
        var start = timespec()
        var end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        body(iterations)
        clock_gettime(CLOCK_MONOTONIC, &end)
        let nanos = Double(end.tv_sec - start.tv_sec) * 1e9 + Double(end.tv_nsec - start.tv_nsec)
        samples.append(nanos / Double(iterations))
    }
    return samples.sorted()[rounds / 2]
}

/// Keeps a value alive so the optimiser cannot drop the work that made it.
@inline(never)
func consume(_ value: UInt) { if value == 0x5EED_5EED { print("") } }

// MARK: - RCU read side: inline (CURCU_rcu_*) against out of line (*_call)

CURCU_rcu_register_thread()
let slot = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
slot.initialize(to: UnsafeMutableRawPointer(bitPattern: 0x1000))

let empty = measure { iterations in
    var sum: UInt = 0
    for index in 0..<iterations { sum &+= UInt(index) }
    consume(sum)
}
let inline = measure { iterations in
    var sum: UInt = 0
    for _ in 0..<iterations {
        CURCU_rcu_quiescent_state()
        sum &+= UInt(bitPattern: CURCU_rcu_dereference(slot))
    }
    consume(sum)
}
let outOfLine = measure { iterations in
    var sum: UInt = 0
    for _ in 0..<iterations {
        CURCU_rcu_quiescent_state_call()
        sum &+= UInt(bitPattern: CURCU_rcu_dereference_call(slot))
    }
    consume(sum)
}
CURCU_rcu_unregister_thread()

print("RCU read side per loop (quiescent state + dereference), median of 7 rounds of 20 M:")
print(String(format: "  loop alone     %6.2f ns", empty))
print(String(format: "  inline         %6.2f ns  (%.2f ns over the loop)", inline, inline - empty))
print(String(format: "  out of line    %6.2f ns  (%.2f ns over the loop)", outOfLine, outOfLine - empty))
print(String(format: "  inline / out of line: %.2f", (inline - empty) / max(outOfLine - empty, 0.001)))

// MARK: - what needs EAL: a private EAL (its own file prefix, removed at exit) on lcore 0,
// with room for a flow table of 1 M flows.

do {
    let eal = try Eal.initialize(
        programName: "fastcapa-microbench",
        arguments: ["--no-huge", "--no-pci", "-m", "512", "-l", "0", "--log-level=lib.eal:error"]
    )
    // The flow table (FlowTableBench.swift), the duplicate window (DuplicateWindowBench.swift),
    // then the capture filter (FilterBench.swift), which Scripts/bench reads from its first line to the end.
    flowTableBenchmarks(loop: empty)
    duplicateWindowBenchmarks(loop: empty)
    filterBenchmarks()
    eal.cleanup()
} catch {
    print("flow table and capture filter: skipped, EAL could not start: \(error)")
}
