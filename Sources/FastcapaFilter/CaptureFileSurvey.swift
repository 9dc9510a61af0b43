import CPcap
import Glibc

/// What a capture file holds that a replay cannot deliver as the file holds it:
/// records captured short of their original length, and records longer than a
/// 16-bit length. Read with libpcap, as net_pcap reads the file (pcap or pcapng).
package struct CaptureFileSurvey: Sendable, Equatable {
    /// Records read.
    package var records = 0
    /// Records whose captured length is below their original length (a snap length).
    package var truncated = 0
    /// The first truncated record.
    package var firstTruncated: Truncated?
    /// Captured lengths over 65,535 bytes, in file order.
    package var longRecords: [Int] = []
    /// Whether the survey stopped at its byte limit before the end of the file.
    package var stoppedEarly = false

    package struct Truncated: Sendable, Equatable {
        /// 1-based, in file order.
        package var record: Int
        package var captured: Int
        package var original: Int

        package init(record: Int, captured: Int, original: Int) {
            (self.record, self.captured, self.original) = (record, captured, original)
        }
    }

    package init() {}

    /// Reads the record headers of `path` up to `byteLimit` bytes of records
    /// (a start must not wait on a replay of many gigabytes). Nil when libpcap
    /// cannot read the file as a capture (net_pcap, which opened it first, says why),
    /// and for anything but a regular file: a FIFO or `/dev/stdin` is read once,
    /// and what the survey read net_pcap would never see.
    package static func read(_ path: String, byteLimit: Int = 1 << 30) -> CaptureFileSurvey? {
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return nil }
        var message = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_open_offline(path, &message) else { return nil }
        defer { pcap_close(handle) }
        var survey = CaptureFileSurvey()
        var bytes = 0
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        while pcap_next_ex(handle, &header, &data) == 1, let record = header?.pointee {
            survey.records += 1
            let captured = Int(record.caplen)
            let original = Int(record.len)
            if captured < original {
                survey.truncated += 1
                if survey.firstTruncated == nil {
                    survey.firstTruncated = Truncated(record: survey.records, captured: captured, original: original)
                }
            }
            if captured > Int(UInt16.max) { survey.longRecords.append(captured) }
            bytes += captured
            if bytes >= byteLimit {
                // One more record means there was more to read.
                survey.stoppedEarly = pcap_next_ex(handle, &header, &data) == 1
                break
            }
        }
        return survey
    }
}
