import CDPDK

/// A failure to set up or run the data path, with what to do about it.
package struct CaptureError: Error, CustomStringConvertible {
    package var problem: String
    package var fix: String
    package init(_ problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }
    package var description: String { fix.isEmpty ? problem : "\(problem). \(fix)" }

    /// DPDK's text for the current `rte_errno`.
    static func dpdkReason(_ code: Int32 = CDPDK_rte_errno()) -> String {
        "\(String(cString: rte_strerror(code))) (rte_errno \(code))"
    }
}
