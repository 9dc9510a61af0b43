import Foundation
import Testing

@testable import FastcapaObservability

@Suite struct ProcessMetricsTests {
    /// proc(5)'s fields, counted after the command name, which may hold spaces and ')'.
    @Test func statFieldsAreReadAfterTheCommandName() throws {
        let stat =
            "4242 (fast capa) (x)) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 9 0 12345 987654321 2048 "
            + "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
        let sample = try #require(
            ProcessMetrics.parse(
                stat: stat,
                bootTime: 1_700_000_000,
                ticksPerSecond: 100,
                pageSize: 4096,
                openFileDescriptors: 12,
                maxFileDescriptors: 1024
            )
        )
        #expect(sample.cpuSeconds == 4)  // (250 + 150) ticks
        #expect(sample.startTimeSeconds == 1_700_000_123.45)
        #expect(sample.virtualBytes == 987_654_321)
        #expect(sample.residentBytes == 2048 * 4096)
        let cut = ProcessMetrics.parse(
            stat: "4242 (cut",
            bootTime: nil,
            ticksPerSecond: 100,
            pageSize: 4096,
            openFileDescriptors: nil,
            maxFileDescriptors: nil
        )
        #expect(cut == nil)
        #expect(ProcessMetrics.bootTime("cpu 1 2 3\nbtime 1700000000\nprocesses 9\n") == 1_700_000_000)
    }

    /// This process, as a scrape reads it: numbers that could only be this process's.
    @Test func thisProcessIsRead() throws {
        // Other tests open and close descriptors meanwhile, so no exact count: the 64 held
        // here (and standard input, output and error) stay open until the sample is read.
        let held = (0..<64).map { _ in open("/dev/null", O_RDONLY) }
        defer { for descriptor in held { close(descriptor) } }
        #expect(held.allSatisfy { $0 >= 0 })
        let sample = try #require(ProcessMetrics.sample())
        #expect(try #require(sample.openFileDescriptors) >= held.count + 3)
        #expect(sample.residentBytes > 1_000_000 && sample.virtualBytes > sample.residentBytes)
        let start = try #require(sample.startTimeSeconds)
        #expect(start <= Date().timeIntervalSince1970 && start > Date().timeIntervalSince1970 - 3600)
        #expect(sample.cpuSeconds > 0)
        let text = ProcessMetrics.lines(sample)
        #expect(text.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "))
        #expect(text.contains("\nprocess_open_fds \(sample.openFileDescriptors!)\n"))
    }
}
