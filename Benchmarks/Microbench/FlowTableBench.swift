import CDPDK
import FastcapaCapture
import Glibc

// The flow table alone: nanoseconds per packet of `FlowTable.admit` (hash, lookup,
// count, verdict) with 1 k, 100 k and 1 M flows in a table sized to hold them,
// every packet of a known flow, flows taken in turn; and the DPDK memory a table
// takes per flow (rte_hash and the flow states, from the malloc heap's statistics).

/// UDP flow keys 10.x.y.z:40000 with 192.168.0.1:53, one per flow.
func flowKeys(_ count: Int) -> [FlowKey] {
    var frame = [UInt8](repeating: 0, count: 42)
    frame[12] = 0x08
    frame[14] = 0x45
    frame[23] = 17
    frame.replaceSubrange(30..<34, with: [192, 168, 0, 1])
    frame.replaceSubrange(34..<38, with: [0x9C, 0x40, 0, 53])
    frame[26] = 10
    var keys: [FlowKey] = []
    keys.reserveCapacity(count)
    for flow in 0..<count {
        frame[27] = UInt8(truncatingIfNeeded: flow >> 16)
        frame[28] = UInt8(truncatingIfNeeded: flow >> 8)
        frame[29] = UInt8(truncatingIfNeeded: flow)
        keys.append(frame.withUnsafeBytes { FlowKey.parse($0)! })
    }
    return keys
}

/// Bytes allocated from DPDK's malloc heaps, every socket.
func dpdkHeapBytes() -> Int {
    var total = 0
    for index in 0..<rte_socket_count() {
        var stats = rte_malloc_socket_stats()
        if rte_malloc_get_socket_stats(rte_socket_id_by_idx(index), &stats) == 0 {
            total += Int(stats.heap_allocsz_bytes)
        }
    }
    return total
}

func flowTableBenchmarks(loop: Double) {
    print("flow table admit (hash, lookup, count, verdict), known flows in turn, median of 5 rounds:")
    let cutoff = FlowCutoff(packets: 10, bytes: 100_000, timeoutMicros: 120_000_000)
    for flows in [1_000, 100_000, 1_000_000] {
        let keys = flowKeys(flows)
        let before = dpdkHeapBytes()
        let table: FlowTable
        do {
            table = try FlowTable(capacity: flows, socket: -1, queue: 0)
        } catch {
            print("  \(flows) flows: skipped, \(error)")
            continue
        }
        let tableBytes = dpdkHeapBytes() - before
        for key in keys { _ = table.admit(key, originalLength: 100, micros: 1, cutoff: cutoff) }
        let iterations = max(flows, 4_000_000)
        let nanos = keys.withUnsafeBufferPointer { keys in
            measure(iterations, rounds: 5) { iterations in
                var kept: UInt = 0
                var index = 0
                for _ in 0..<iterations {
                    if table.admit(keys[index], originalLength: 100, micros: 2, cutoff: cutoff) != .cut { kept &+= 1 }
                    index += 1
                    if index == flows { index = 0 }
                }
                consume(kept)
            }
        }
        let active = table.counters.activeFlows
        table.release()
        let name = "\(flows) flows"
        print(
            "  " + name + String(repeating: " ", count: max(0, 16 - name.count))
                + String(format: "%7.2f ns per packet (%.2f over the loop)", nanos, nanos - loop)
                + String(
                    format: ", %.1f MiB, %.0f bytes per flow (estimate %.0f), %llu active",
                    Double(tableBytes) / 1_048_576,
                    Double(tableBytes) / Double(flows),
                    Double(FlowTable.approximateBytes(capacity: flows)) / Double(flows),
                    active
                )
        )
    }
}
