/// Where /metrics and /health are served: `HOST:PORT` (port 0 picks a free one).
struct MetricsAddress: Sendable, Equatable {
    var host: String
    var port: Int

    init(parsing text: String) throws(SettingError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port), colon != text.startIndex
        else {
            throw SettingError(
                "metrics-address: '\(text)' is not HOST:PORT. Write it like 127.0.0.1:9464 (or [::1]:9464; port 0 picks a free one)."
            )
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        self.port = port
    }
}
