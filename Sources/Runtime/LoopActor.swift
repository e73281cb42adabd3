import Glibc

/// The global actor whose executor is the process's one event loop.
///
/// Everything that touches connections is isolated to it, so the compiler proves that project
/// code only ever runs on the loop thread.
@globalActor
public actor LoopActor {
    public static let shared = LoopActor()
    /// Asked on every executor hop: a stored value, so answering
    /// does not go through the loop's lazily initialised global each time.
    private nonisolated let executor = EventLoop.shared.asUnownedSerialExecutor()
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor }
}

/// Starts a task on the loop.
///
/// Why no task-executor preference: a task carrying one makes every `swift_task_switch` (about
/// sixteen per proxied request) take the task's status-record lock to read it, which cost ~18% of
/// our instructions per request. Instead the runtime's global-enqueue hook (`GlobalExecutorHook`,
/// installed by `EventLoop.run`) sends every job meant for the global pool to the loop, so nonisolated async code, continuations
/// resumed "anywhere" and even detached tasks run on this thread, and the pool never starts.
public func spawnOnLoop(_ body: @escaping @LoopActor @Sendable () async -> Void) {
    let loop = EventLoop.shared
    loop.liveTasks += 1
    Task<Void, Never> { @LoopActor in
        await body()
        loop.liveTasks -= 1
    }
}
