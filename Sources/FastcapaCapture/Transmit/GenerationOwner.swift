import Dispatch
import Synchronization

/// The one thread on which a transmit worker's producer generations are created,
/// swapped, retired, flushed and released: a serial dispatch queue, off Swift's
/// cooperative pool and off the lcores, where blocking (RCU grace periods,
/// retirement, flushes) is allowed. Nothing else touches a `ProducerGeneration`;
/// the control plane reads producers only through the sampler's snapshot.
///
/// Work on it is bounded by deadlines (a stop brings them forward), so whoever
/// waits for it waits a bounded time; an async caller's wait is also
/// cancellable: it returns at once on cancellation, while the work itself runs
/// to its (bounded) end.
package final class GenerationOwner: Sendable {
    private let queue: DispatchQueue

    package init(label: String) {
        queue = DispatchQueue(label: label)
    }

    /// Runs `body` on the owner thread and waits for it (the main lcore at start-up and shutdown).
    package func sync<Result>(_ body: () throws -> Result) rethrows -> Result {
        dispatchPrecondition(condition: .notOnQueue(queue))
        return try queue.sync(execute: body)
    }

    /// Checks that the caller runs on the owner thread.
    func assertOnOwner() { dispatchPrecondition(condition: .onQueue(queue)) }

    /// Runs `body` on the owner thread. Cancelling the calling task ends the wait
    /// at once with `CancellationError` (the work still completes on its own).
    package func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        let waiter = Waiter<Result>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                guard waiter.wait(continuation) else { return }
                queue.async { waiter.finish(with: Swift.Result { try body() }) }
            }
        } onCancel: {
            waiter.finish(with: .failure(CancellationError()))
        }
    }

    /// Hands one result to a continuation exactly once: the work's, or the cancellation's.
    private final class Waiter<Result: Sendable>: Sendable {
        private enum State {
            case idle
            case waiting(CheckedContinuation<Result, Error>)
            case finished
        }
        private let state = Mutex<State>(.idle)

        /// Stores the continuation; false (after resuming it) when cancelled already.
        func wait(_ continuation: CheckedContinuation<Result, Error>) -> Bool {
            let cancelled = state.withLock { state in
                if case .finished = state { return true }
                state = .waiting(continuation)
                return false
            }
            if cancelled { continuation.resume(throwing: CancellationError()) }
            return !cancelled
        }

        func finish(with result: Swift.Result<Result, Error>) {
            let continuation: CheckedContinuation<Result, Error>? = state.withLock { state in
                defer { state = .finished }
                guard case .waiting(let continuation) = state else { return nil }
                return continuation
            }
            continuation?.resume(with: result)
        }
    }
}
