import CPcap

/// libpcap refused an expression: its message, and where in the expression the
/// problem is when that can be told.
package struct FilterError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Where libpcap stopped understanding the expression.
    package enum Offending: Equatable, Sendable {
        /// The word starting at `offset` (0-based, in characters) cannot follow what precedes it.
        case word(String, offset: Int)
        /// Every word fits, but the expression ends before it is complete.
        case end
    }

    package var expression: String
    /// libpcap's message, unchanged.
    package var message: String
    package var offending: Offending?

    package init(expression: String, message: String, offending: Offending? = nil) {
        self.expression = expression
        self.message = message
        self.offending = offending
    }

    /// "libpcap: MESSAGE, at 'WORD' (character N)".
    package var description: String {
        var text = "libpcap: \(message)"
        switch offending {
        case .word(let word, let offset): text += ", at '\(word)' (character \(offset + 1))"
        case .end: text += ", at the end (the expression is incomplete)"
        case nil: break
        }
        return text
    }
}

extension CaptureFilter {
    /// libpcap's parser says only "syntax error". The offending word is the first
    /// whose prefix of the expression no completion can make valid; a name
    /// libpcap quotes in its message ("unknown host 'x'") is found where it stands.
    static func locate(message: String, in expression: String, linkType: Int32) -> FilterError.Offending? {
        let words = Self.words(expression)
        if let quoted = Self.quoted(message) {
            return words.first { $0.text.contains(quoted) }.map { .word($0.text, offset: $0.offset) }
        }
        guard message.contains("syntax error"), !words.isEmpty else { return nil }
        guard let handle = pcap_open_dead(linkType, 262_144) else { return nil }
        defer { pcap_close(handle) }
        func compiles(_ text: String) -> Bool {
            var program = bpf_program()
            guard pcap_compile(handle, &program, text, 0, PCAP_NETMASK_UNKNOWN) == 0 else { return false }
            pcap_freecode(&program)
            return true
        }
        // Endings that complete most valid prefixes of pcap-filter's grammar.
        let completions = [
            "", " ip", " 80", " 10.0.0.1", " and ip", ")", " 0", " = 0", "] = 0", ":1] = 0", " 0)", "))", " 1.1.1.1)",
        ]
        for (index, word) in words.enumerated() {
            let prefix = String(expression.prefix(word.offset + word.text.count))
            if !completions.contains(where: { compiles(prefix + $0) }) {
                return .word(word.text, offset: word.offset)
            }
            if index == words.count - 1 { return .end }
        }
        return nil
    }

    /// Whitespace-separated words with their offsets.
    static func words(_ text: String) -> [(text: String, offset: Int)] {
        var words: [(String, Int)] = []
        var current = ""
        var start = 0
        for (offset, character) in text.enumerated() {
            if character.isWhitespace {
                if !current.isEmpty { words.append((current, start)) }
                current = ""
            } else {
                if current.isEmpty { start = offset }
                current.append(character)
            }
        }
        if !current.isEmpty { words.append((current, start)) }
        return words
    }

    /// The text between the first pair of single quotes in libpcap's message.
    static func quoted(_ message: String) -> String? {
        let parts = message.split(separator: "'", omittingEmptySubsequences: false)
        guard parts.count >= 3, !parts[1].isEmpty else { return nil }
        return String(parts[1])
    }
}
