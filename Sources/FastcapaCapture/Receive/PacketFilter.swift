import CDPDK
import FastcapaFilter
import Glibc
import Synchronization

/// How the receive lcores run a capture filter.
package enum FilterEngine: String, Sendable, CaseIterable {
    /// Native code from librte_bpf's JIT; its eBPF interpreter where the platform has no JIT.
    case jit
    /// librte_bpf's eBPF interpreter, even where there is a JIT (for comparison).
    case interpreter
}

/// What a receive lcore reads through RCU once per burst: the loaded program
/// and, when it was JIT-compiled, its native code. Plain memory: RCU readers
/// hold it without reference counting.
struct FilterRecord {
    var program: OpaquePointer
    var native: (@convention(c) (UnsafeMutableRawPointer?) -> UInt64)?
}

/// A capture filter loaded into librte_bpf: libpcap's classic program converted
/// to eBPF (`rte_bpf_convert`), checked and loaded (`rte_bpf_load`, which
/// JIT-compiles it where DPDK has a JIT: x86-64 and arm64). The eBPF program's
/// context is the mbuf (`RTE_BPF_ARG_PTR_MBUF`): its packet loads go through
/// `rte_pktmbuf_read`, in the interpreter and in the JIT's slow path alike, so
/// they read across the segments of a chained frame. Two bugs of DPDK 22.11's
/// converter and JIT are repaired before loading (`ConvertedProgram`).
///
/// Build it off the lcores (it allocates and may take milliseconds); it is freed
/// (`rte_bpf_destroy`) exactly once, when the last reference goes, which
/// `FilterSlot` makes happen only after a grace period.
package final class PacketFilter: @unchecked Sendable {
    package let expression: String
    package let engine: FilterEngine
    package let snapLength: Int
    package let classicInstructions: Int
    package let ebpfInstructions: Int
    /// Bytes of native code, 0 when the interpreter runs it.
    package let nativeBytes: Int
    /// Why the JIT asked for did not run it (nil: it did, or the interpreter was asked for).
    package let jitRefusal: String?
    let record: UnsafeMutablePointer<FilterRecord>

    /// Programs loaded and destroyed in this process (a swap frees exactly one).
    package static let loadedCount = Atomic<Int>(0)
    package static let destroyedCount = Atomic<Int>(0)

    /// Compiles `expression` with libpcap and loads it. Needs EAL (the
    /// converter allocates with rte_malloc).
    package convenience init(expression: String, snapLength: Int, engine: FilterEngine) throws(CaptureError) {
        let classic: CaptureFilter
        do {
            classic = try CaptureFilter(expression, snapLength: snapLength)
        } catch {
            throw CaptureError(
                "the capture filter '\(expression)' is refused by \(error)",
                fix: "Write a tcpdump expression (pcap-filter(7)), e.g. 'tcp port 443 or udp port 53'."
            )
        }
        try self.init(classic, engine: engine)
    }

    package init(_ classic: CaptureFilter, engine: FilterEngine) throws(CaptureError) {
        expression = classic.expression
        self.engine = engine
        snapLength = classic.snapLength
        classicInstructions = classic.instructionCount
        guard let parameters = classic.withClassicProgram({ CDPDK_rte_bpf_convert($0) }) else {
            throw CaptureError(
                "DPDK cannot convert the capture filter '\(classic.expression)' to eBPF: \(CaptureError.dpdkReason())",
                fix: "Simplify the expression, or report it with the output of tcpdump -d 'EXPRESSION'."
            )
        }
        defer { rte_free(parameters) }
        let instructions = try ConvertedProgram.repaired(
            UnsafeBufferPointer(start: parameters.pointee.ins, count: Int(parameters.pointee.nb_ins))
        )
        ebpfInstructions = instructions.count
        // rte_bpf_load copies the instructions.
        let loaded = instructions.withUnsafeBufferPointer { buffer in
            var repaired = parameters.pointee
            repaired.ins = buffer.baseAddress
            repaired.nb_ins = UInt32(buffer.count)
            return rte_bpf_load(&repaired)
        }
        guard let program = loaded else {
            throw CaptureError(
                "DPDK's eBPF verifier refuses the capture filter '\(classic.expression)': \(CaptureError.dpdkReason())",
                fix: "Simplify the expression, or report it with the output of tcpdump -d 'EXPRESSION'."
            )
        }
        var jit = rte_bpf_jit()
        let compiled = engine == .jit && rte_bpf_get_jit(program, &jit) == 0 && jit.func != nil
        let native = compiled ? jit.func : nil
        nativeBytes = compiled ? jit.sz : 0
        jitRefusal = engine == .jit && !compiled ? Self.whyNoJit() : nil
        record = .allocate(capacity: 1)
        record.initialize(to: FilterRecord(program: program, native: native))
        Self.loadedCount.add(1, ordering: .relaxed)
    }

    deinit {
        rte_bpf_destroy(record.pointee.program)
        record.deinitialize(count: 1)
        record.deallocate()
        Self.destroyedCount.add(1, ordering: .relaxed)
    }

    /// Whether native code runs it.
    package var isNative: Bool { nativeBytes > 0 }

    /// For the log: the expression, its sizes and what runs it.
    package var summary: String {
        let runner =
            isNative
            ? "JIT-compiled to \(nativeBytes) bytes of native code"
            : jitRefusal.map { "run by the eBPF interpreter: \($0)" }
                ?? "run by the eBPF interpreter (filter-engine interpreter)"
        return "'\(expression)': \(classicInstructions) classic BPF instructions, \(ebpfInstructions) eBPF, \(runner)"
    }

    /// Why librte_bpf's JIT made no code. It has one for x86-64 and arm64; there,
    /// the usual reason is a process that may not make memory executable, which
    /// is what systemd's MemoryDenyWriteExecute=yes (a seccomp filter) and
    /// SELinux's execmem denial do: the JIT writes its code, then mprotect()s it
    /// executable. A page tried the same way tells which.
    static func whyNoJit() -> String {
        #if arch(x86_64) || arch(arm64)
        let page = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let page, page != MAP_FAILED else { return "the JIT failed (DPDK's log says why)" }
        defer { munmap(page, 4096) }
        guard mprotect(page, 4096, PROT_READ | PROT_EXEC) == 0 else {
            return
                "the JIT cannot make its code executable (mprotect PROT_EXEC: \(String(cString: strerror(errno)))). Under systemd that is MemoryDenyWriteExecute=yes (the shipped unit leaves it out): remove it from the unit's drop-in (systemctl edit fastcapa), or set filter-engine: interpreter to say so"
        }
        return "the JIT failed (DPDK's log says why)"
        #else
        return "DPDK has no JIT for this platform"
        #endif
    }

    /// The program's verdicts on `count` packets (non-zero: accepted), as the
    /// receive loop computes them; nothing freed (benchmarks and tests).
    @inline(__always)
    package func evaluate(
        _ packets: UnsafeMutablePointer<OpaquePointer?>,
        _ count: Int,
        into verdicts: UnsafeMutablePointer<UInt64>
    ) {
        Self.evaluate(record, packets, count, into: verdicts)
    }

    @inline(__always)
    static func evaluate(
        _ record: UnsafeMutablePointer<FilterRecord>,
        _ packets: UnsafeMutablePointer<OpaquePointer?>,
        _ count: Int,
        into verdicts: UnsafeMutablePointer<UInt64>
    ) {
        if let native = record.pointee.native {
            for index in 0..<count { verdicts[index] = native(UnsafeMutableRawPointer(packets[index])) }
        } else {
            packets.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: count) {
                _ = rte_bpf_exec_burst(record.pointee.program, $0, verdicts, UInt32(count))
            }
        }
    }

    /// Runs the program on `count` packets, keeps those it accepts at the front
    /// of `packets` (in order), frees the others and returns how many it kept.
    /// `verdicts` and `rejected` hold `count` entries. The receive loop's code:
    /// no allocation, no lock, no call but the filter's own.
    @inline(__always)
    static func apply(
        _ record: UnsafeMutablePointer<FilterRecord>,
        _ packets: UnsafeMutablePointer<OpaquePointer?>,
        _ count: Int,
        verdicts: UnsafeMutablePointer<UInt64>,
        rejected: UnsafeMutablePointer<OpaquePointer?>
    ) -> (kept: Int, rejected: Int) {
        evaluate(record, packets, count, into: verdicts)
        var kept = 0
        var refused = 0
        for index in 0..<count {
            let packet = packets[index]
            if verdicts[index] != 0 {
                packets[kept] = packet
                kept += 1
            } else {
                rejected[refused] = packet
                refused += 1
            }
        }
        if refused > 0 { CDPDK_rte_pktmbuf_free_bulk(rejected, UInt32(refused)) }
        return (kept, refused)
    }
}
