import CDPDK

/// A failure to set up or run the data path, with what to do about it.
public struct CaptureError: Error, CustomStringConvertible {
    public var problem: String
    public var fix: String
    public init(_ problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }
    public var description: String { fix.isEmpty ? problem : "\(problem). \(fix)" }

    /// DPDK's text for the current `rte_errno`.
    static func dpdkReason(_ code: Int32 = cfc_errno()) -> String {
        "\(String(cString: rte_strerror(code))) (rte_errno \(code))"
    }
}
