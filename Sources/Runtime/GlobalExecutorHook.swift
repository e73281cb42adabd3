import CLinux
import Glibc

/// Routes jobs that the concurrency runtime would give to its global thread pool onto the loop.
///
/// The runtime exports `swift_task_enqueueGlobal_hook`, a function pointer it calls instead of
/// its own global enqueue when set. A process with one thread has no use for that pool: a job
/// enqueued there is nonisolated async code or a continuation resumed without an executor, and
/// running it on the loop is both correct and what keeps `/proc/self/task` at one entry. The C
/// shim takes the variable's address by name, so it is found whether the runtime is a shared
/// library or linked into the executable (`dlsym` sees only the former).
enum GlobalExecutorHook {
    typealias Original = @convention(thin) (UnownedJob) -> Void
    typealias Hook = @convention(thin) (UnownedJob, Original) -> Void

    /// Called once, by `EventLoop.run` (the hook only acts on the thread running the loop).
    static func install() {
        let slot = UnsafeMutableRawPointer(gh_enqueue_global_hook())!
        slot.assumingMemoryBound(to: Hook?.self).pointee = { job, original in
            let loop = EventLoop.shared
            // Another thread (only a test process has any) keeps the runtime's own pool.
            if loop.ownsCurrentThread { loop.enqueue(job) } else { original(job) }
        }
    }
}
