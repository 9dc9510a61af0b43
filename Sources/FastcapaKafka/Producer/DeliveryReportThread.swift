import CFastcapaShared
import CRdKafka
import Foundation
import Glibc

/// Serves one producer's delivery reports (and its error and statistics
/// callbacks) on a thread of its own instead of the transmit lcore, under
/// `--delivery-reports thread`. Created on the control cores, it runs there
/// beside librdkafka's threads.
///
/// While it runs, only it polls the producer, so callbacks never run on two
/// threads at once. It starts paused: a restart resumes the successor's thread
/// only after it has stopped the old producer's, for both count into the same
/// counters.
final class DeliveryReportThread: @unchecked Sendable {
    /// What the thread reads: manually allocated, so that it never touches this object.
    private struct Shared {
        var state: UInt32
        let kafka: OpaquePointer
        let context: UnsafeMutablePointer<fastcapa_producer_context>
        let name: String
    }

    private let shared: UnsafeMutablePointer<Shared>
    private var thread = pthread_t()
    private var joined = false

    private static let paused: UInt32 = 0
    private static let running: UInt32 = 1
    private static let stopping: UInt32 = 2

    init(
        kafka: OpaquePointer,
        context: UnsafeMutablePointer<fastcapa_producer_context>,
        name: String
    ) throws(KafkaThreadError) {
        shared = .allocate(capacity: 1)
        shared.initialize(to: Shared(state: Self.paused, kafka: kafka, context: context, name: name))
        let status = pthread_create(
            &thread,
            nil,
            { arg in
                DeliveryReportThread.run(arg!.assumingMemoryBound(to: Shared.self))
                return nil
            },
            UnsafeMutableRawPointer(shared)
        )
        guard status == 0 else {
            joined = true  // nothing to join: deinit (which runs on this throw) frees `shared`
            throw KafkaThreadError(status: status)
        }
    }

    deinit {
        stop()
        shared.deinitialize(count: 1)
        shared.deallocate()
    }

    /// Starts serving reports.
    func resume() { fastcapa_flag_store(&shared.pointee.state, Self.running) }

    /// Stops serving reports and waits for the thread to end (within one poll, 10 ms).
    func stop() {
        guard !joined else { return }
        joined = true
        fastcapa_flag_store(&shared.pointee.state, Self.stopping)
        pthread_join(thread, nil)
    }

    private static func run(_ shared: UnsafeMutablePointer<Shared>) {
        let kafka = shared.pointee.kafka
        let context = shared.pointee.context
        Thread.current.name = shared.pointee.name  // as ps and /proc show it
        // Polls block, so a time read before one would be stale for its reports:
        // each report reads the clock itself.
        fastcapa_counter_store(&context.pointee.poll_time_us, 0)
        while true {
            let current = fastcapa_flag_load(&shared.pointee.state)
            if current == stopping { break }
            // A producer that failed fatally keeps its failed messages queued
            // for its successor, as the lcore does: stop polling it.
            if current == paused || fastcapa_counter_load(&context.pointee.fatal) != 0 {
                usleep(1000)
                continue
            }
            rd_kafka_poll(kafka, 10)
        }
    }
}

/// A delivery-report thread could not be created.
package struct KafkaThreadError: Error, CustomStringConvertible {
    package var status: Int32
    package var description: String {
        "cannot start a delivery-report thread: \(String(cString: strerror(status))). Raise the process's thread limit, or use --delivery-reports lcore."
    }
}
