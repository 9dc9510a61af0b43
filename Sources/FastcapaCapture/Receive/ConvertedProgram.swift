import CDPDK

/// The eBPF program `rte_bpf_convert` makes of libpcap's classic BPF, repaired
/// for two bugs of DPDK 22.11 that tcpdump-as-oracle tests found (both still in
/// DPDK's sources as of 2025):
///
/// - **Indirect loads index by A instead of X.** The converter copies the
///   classic `ld [x + k]` as is and sets its index register from the opcode's
///   source bit; for halfword loads that bit happens to be set (X, right), for
///   byte and word loads it is not (R0 = A, wrong). So `tcp[tcpflags] & tcp-syn
///   != 0` read the wrong byte. Every indirect load here indexes by X (R7), as
///   classic BPF defines.
/// - **The x86 JIT encodes `test reg, imm` with a 1-byte immediate** when the
///   immediate fits in 8 bits, but the instruction (F7 /0) takes 4: the CPU
///   then reads the next instructions as the immediate. `ether multicast`
///   (`jset #0x1`) matched everything. Each `jset #k` with such a `k` becomes
///   `mov r9, k; jset r9` (the converter never uses R9), jumps relocated.
enum ConvertedProgram {
    /// Registers of converted programs (bpf_convert.c): A = R0, X = R7; R9 is free.
    static let registerX: UInt8 = 7
    static let scratchRegister: UInt8 = 9

    static func repaired(_ program: UnsafeBufferPointer<ebpf_insn>) throws(CaptureError) -> [ebpf_insn] {
        let jsetImmediate = UInt8(BPF_JMP | BPF_JSET | BPF_K)
        func needsScratch(_ instruction: ebpf_insn) -> Bool {
            instruction.code == jsetImmediate && (-128...127).contains(instruction.imm)
        }
        guard !program.contains(where: { $0.dst_reg == scratchRegister || $0.src_reg == scratchRegister }) else {
            throw CaptureError(
                "DPDK's converted capture filter uses register R9, which fastcapa needs to repair its jumps",
                fix: "Report the expression; meanwhile run it with --filter-engine interpreter."
            )
        }
        // Where each old instruction starts (a repaired jset starts at its mov) and where it now is.
        var start: [Int] = []
        var position: [Int] = []
        var next = 0
        for instruction in program {
            start.append(next)
            next += needsScratch(instruction) ? 2 : 1
            position.append(next - 1)
        }
        var repaired = [ebpf_insn](repeating: ebpf_insn(), count: next)
        for (index, original) in program.enumerated() {
            var instruction = original
            if needsScratch(original) {
                var move = ebpf_insn()
                move.code = UInt8(EBPF_ALU64 | EBPF_MOV | BPF_K)
                move.dst_reg = scratchRegister
                move.imm = original.imm
                repaired[start[index]] = move
                instruction.code = UInt8(BPF_JMP | BPF_JSET | BPF_X)
                instruction.src_reg = scratchRegister
                instruction.imm = 0
            }
            let code = Int32(instruction.code)
            if code & 0x07 == BPF_LD && code & 0xE0 == BPF_IND {
                instruction.src_reg = registerX
            }
            if code & 0x07 == BPF_JMP && code & 0xF0 != EBPF_CALL && code & 0xF0 != EBPF_EXIT {
                let target = index + 1 + Int(original.off)
                guard program.indices.contains(target), let offset = Int16(exactly: start[target] - position[index] - 1)
                else {
                    throw CaptureError(
                        "DPDK's converted capture filter jumps outside itself (instruction \(index))",
                        fix: "Report the expression with the output of tcpdump -d 'EXPRESSION'."
                    )
                }
                instruction.off = offset
            }
            repaired[position[index]] = instruction
        }
        return repaired
    }
}
