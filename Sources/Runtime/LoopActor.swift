/// The global actor whose executor is the process's one event loop.
///
/// Everything that touches connections is isolated to it, so the compiler proves that project
/// code only ever runs on the loop thread.
@globalActor
public actor LoopActor {
    public static let shared = LoopActor()
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        EventLoop.shared.asUnownedSerialExecutor()
    }
}

/// Starts a task on the loop. An unstructured `Task {}` would not inherit the loop's task-executor
/// preference, so nonisolated async code inside it would run on the global pool; this never does.
public func spawnOnLoop(_ body: @escaping @LoopActor @Sendable () async -> Void) {
    let loop = EventLoop.shared
    loop.liveTasks += 1
    Task<Void, Never>(executorPreference: loop, operation: {
        await body()
        loop.liveTasks -= 1
    })
}
