import CPcap

/// A tcpdump expression (pcap-filter(7)) compiled by libpcap into a classic BPF
/// program for Ethernet frames: compile once, match many frames.
///
/// The program lives as long as this object (freed with `pcap_freecode` in
/// `deinit`). `matches` runs libpcap's own interpreter (`pcap_offline_filter`)
/// on a frame and its original length; `withClassicProgram` lends the program to
/// another engine (DPDK's converter) for the length of a call.
package final class CaptureFilter: @unchecked Sendable {
    /// The expression as given.
    package let expression: String
    /// What an accepting program returns, and the snap length libpcap compiled for.
    package let snapLength: Int
    /// Owned: `bf_insns` is libpcap's allocation until `deinit`.
    private var program = bpf_program()

    /// The link type every capture of the probe has.
    package static let ethernet = Int32(DLT_EN10MB)

    /// Compiles `expression` (optimised, netmask unknown) for `linkType` frames
    /// captured with `snapLength`. An empty expression accepts every frame.
    /// Thread-safe: each compilation has its own dead handle.
    package init(_ expression: String, snapLength: Int = 262_144, linkType: Int32 = ethernet) throws(FilterError) {
        self.expression = expression
        self.snapLength = snapLength
        guard let handle = pcap_open_dead(linkType, Int32(clamping: snapLength)) else {
            throw FilterError(expression: expression, message: "libpcap cannot open a handle to compile with")
        }
        defer { pcap_close(handle) }
        guard pcap_compile(handle, &program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            let message = String(cString: pcap_geterr(handle))
            throw FilterError(
                expression: expression,
                message: message,
                offending: Self.locate(message: message, in: expression, linkType: linkType)
            )
        }
    }

    deinit { pcap_freecode(&program) }

    /// Classic BPF instructions in the program.
    package var instructionCount: Int { Int(program.bf_len) }

    /// Whether the program accepts `frame`, captured from a frame of
    /// `originalLength` bytes on the wire (`len`, `greater` and `less` test it).
    package func matches(_ frame: UnsafeRawBufferPointer, originalLength: Int? = nil) -> Bool {
        var header = pcap_pkthdr()
        header.caplen = UInt32(frame.count)
        header.len = UInt32(originalLength ?? frame.count)
        var empty: UInt8 = 0
        return withUnsafePointer(to: &program) { program in
            guard let base = frame.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                return pcap_offline_filter(program, &header, &empty) != 0
            }
            return pcap_offline_filter(program, &header, base) != 0
        }
    }

    /// `matches` for a frame held in an array.
    package func matches(_ frame: [UInt8], originalLength: Int? = nil) -> Bool {
        frame.withUnsafeBytes { matches($0, originalLength: originalLength) }
    }

    /// Lends `struct bpf_program *` (libpcap's layout) to `body`; the pointer is
    /// valid only during the call.
    package func withClassicProgram<Result>(_ body: (UnsafeRawPointer) throws -> Result) rethrows -> Result {
        try withUnsafePointer(to: &program) { try body(UnsafeRawPointer($0)) }
    }

    /// The program as `tcpdump -d` prints it, one instruction per line.
    package var disassembly: [String] {
        (0..<Int(program.bf_len)).map { index in
            String(cString: bpf_image(program.bf_insns + index, Int32(index)))
        }
    }

}
