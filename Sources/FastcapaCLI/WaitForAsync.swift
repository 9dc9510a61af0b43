import Dispatch

/// Waits on a plain thread (the main lcore) for async work to finish.
package func waitForAsync<Value: Sendable>(_ body: @escaping @Sendable () async -> Value) -> Value {
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
