import Dispatch

/// Runs blocking work (RCU grace periods, flushes, producer retirement) on a
/// serial queue of its own, off Swift's cooperative pool and off the lcores.
/// Serial: one producer replacement at a time per worker.
final class BlockingQueue: Sendable {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Swift.Result { try body() }) }
        }
    }
}
