import Foundation

/// The process metrics every Prometheus client library exports (`process_*`,
/// as client_golang's process collector names them), read from `/proc` at each
/// scrape: CPU seconds, resident and virtual memory, open and allowed file
/// descriptors, start time.
package enum ProcessMetrics {
    /// One sample of them; nil fields could not be read.
    package struct Sample: Equatable, Sendable {
        package var cpuSeconds: Double
        package var residentBytes: Double
        package var virtualBytes: Double
        package var startTimeSeconds: Double?
        package var openFileDescriptors: Int?
        package var maxFileDescriptors: Int?
    }

    /// This process, now.
    package static func sample() -> Sample? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8) else { return nil }
        let bootTime = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)).flatMap(Self.bootTime)
        var limit = rlimit()
        // RLIM_INFINITY is all ones; such a limit is not exported.
        let maxFDs =
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 && limit.rlim_cur < UInt(Int.max)
            ? Int(limit.rlim_cur) : nil
        // Listing the folder opens one descriptor more, which is not counted.
        let openFDs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")).map { $0.count - 1 }
        return parse(
            stat: stat,
            bootTime: bootTime,
            ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))),
            pageSize: Double(sysconf(Int32(_SC_PAGESIZE))),
            openFileDescriptors: openFDs,
            maxFileDescriptors: maxFDs
        )
    }

    /// `/proc/PID/stat` (proc(5)): fields counted after the command name, which
    /// may hold spaces and parentheses, so from its last ')'.
    static func parse(
        stat: String,
        bootTime: Double?,
        ticksPerSecond: Double,
        pageSize: Double,
        openFileDescriptors: Int?,
        maxFileDescriptors: Int?
    ) -> Sample? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        // Field 3 (state) is the first after the name.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Double? {
            let index = number - 3
            return index < fields.count ? Double(fields[index]) : nil
        }
        guard let user = field(14), let system = field(15), let start = field(22), let virtual = field(23),
            let resident = field(24), ticksPerSecond > 0
        else { return nil }
        return Sample(
            cpuSeconds: (user + system) / ticksPerSecond,
            residentBytes: resident * pageSize,
            virtualBytes: virtual,
            startTimeSeconds: bootTime.map { $0 + start / ticksPerSecond },
            openFileDescriptors: openFileDescriptors,
            maxFileDescriptors: maxFileDescriptors
        )
    }

    /// `btime` of `/proc/stat`: when the system booted, in seconds since the epoch.
    static func bootTime(_ text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix("btime ") }.flatMap { Double($0.dropFirst(6)) }
    }

    /// The text exposition of a sample.
    package static func lines(_ sample: Sample) -> String {
        var metrics: [(String, String, String, Double)] = [
            (
                "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
                sample.cpuSeconds
            ),
            ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", sample.residentBytes),
            ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", sample.virtualBytes),
        ]
        if let start = sample.startTimeSeconds {
            metrics.append(
                ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", start)
            )
        }
        if let open = sample.openFileDescriptors {
            metrics.append(("process_open_fds", "gauge", "Number of open file descriptors.", Double(open)))
        }
        if let max = sample.maxFileDescriptors {
            metrics.append(("process_max_fds", "gauge", "Maximum number of open file descriptors.", Double(max)))
        }
        return metrics.map { name, type, help, value in
            "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(PrometheusText.number(value))\n"
        }.joined()
    }
}

/// Small pieces of Prometheus' text format the registry does not write.
enum PrometheusText {
    /// A sample value: integers without a fraction, others as Swift prints them.
    static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }
}
