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

/// Waits on a plain thread (the main lcore) for async work to finish.
public func waitForAsync<Value: Sendable>(_ body: @escaping @Sendable () async -> Value) -> Value {
    let box = ResultBox<Value>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        box.value = await body()
        done.signal()
    }
    done.wait()
    return box.value!
}

/// Carries a value from a task to the thread waiting on the semaphore.
private final class ResultBox<Value>: @unchecked Sendable {
    var value: Value?
}
