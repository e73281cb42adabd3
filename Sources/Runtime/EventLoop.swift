import CLinux
import Glibc

/// The one event loop of the process: an epoll selector, a timer heap and the Swift concurrency
/// executor, all on one thread.
///
/// It is both a `SerialExecutor` (for `LoopActor`) and a `TaskExecutor` (a task given it as its
/// preference keeps nonisolated async code here; our own tasks get the same from
/// `GlobalExecutorHook` without paying for a preference on every switch). Each turn runs queued jobs, then waits in `epoll_wait` for
/// at most the time to the next deadline, then resumes the continuations of ready sockets.
public final class EventLoop: SerialExecutor, TaskExecutor, @unchecked Sendable {
    public static let shared = EventLoop()

    private let epfd: Int32
    private let maxEvents: Int32 = 1024
    private let events: UnsafeMutablePointer<epoll_event>
    /// Registered sockets by fd; an fd's generation rejects events meant for an earlier socket.
    private var sockets: [Socket?] = []
    private var generation: UInt32 = 0
    private var jobs = JobQueue()
    private var threadID: pthread_t?
    private var running = false

    public let timers = TimerHeap()
    /// Monotonic ns, read once per turn.
    public private(set) var now: UInt64 = monotonicNanos()
    /// Tasks started with `spawnOnLoop` and not finished.
    public var liveTasks = 0
    public private(set) var iterations: UInt64 = 0
    public private(set) var busyNanos: UInt64 = 0
    public private(set) var registeredSockets = 0
    /// Called once per turn after I/O dispatch (TLS uses this for bytes OpenSSL already holds).
    public var turnHooks: [() -> Void] = []
    /// Called once before the loop next waits in epoll, for work worth doing once per turn rather
    /// than once per task (an HTTP/2 connection writes the frames of all its streams in one go).
    private var atTurnEnd: [any TurnEndHandler] = []

    public func callAtTurnEnd(_ h: any TurnEndHandler) { atTurnEnd.append(h) }

    private init() {
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epfd >= 0, "epoll_create1 failed: \(errno)")
        events = .allocate(capacity: Int(maxEvents))
    }

    // MARK: Executor

    public func enqueue(_ job: consuming ExecutorJob) {
        jobs.push(UnownedJob(job))
    }

    public func enqueue(_ job: UnownedJob) {
        jobs.push(job)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// True on the thread running the loop (false before `run()`).
    public var ownsCurrentThread: Bool {
        guard let t = threadID else { return false }
        return pthread_equal(t, pthread_self()) != 0
    }

    public func checkIsolated() {
        if let t = threadID, pthread_equal(t, pthread_self()) != 0 { return }
        fatalError("Gatehouse code ran off the event-loop thread")
    }

    // MARK: Registration

    func register(fd: Int32, socket: Socket) -> UInt32 {
        generation &+= 1
        if generation == 0 { generation = 1 }
        let idx = Int(fd)
        if idx >= sockets.count {
            sockets.append(contentsOf: repeatElement(nil, count: max(idx + 1 - sockets.count, sockets.count)))
        }
        sockets[idx] = socket
        var ev = epoll_event()
        ev.events = gh_epollin() | gh_epollout() | gh_epollrdhup() | gh_epollet()
        ev.data.u64 = (UInt64(generation) << 32) | UInt64(UInt32(bitPattern: fd))
        if epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0 {
            sockets[idx] = nil
            return 0
        }
        registeredSockets += 1
        return generation
    }

    /// Points `fd`'s registration at `socket` under a new generation (see `Socket.transfer`).
    func retag(fd: Int32, to socket: Socket) -> UInt32 {
        generation &+= 1
        if generation == 0 { generation = 1 }
        var ev = epoll_event()
        ev.events = gh_epollin() | gh_epollout() | gh_epollrdhup() | gh_epollet()
        ev.data.u64 = (UInt64(generation) << 32) | UInt64(UInt32(bitPattern: fd))
        guard epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0 else { return 0 }
        sockets[Int(fd)] = socket
        return generation
    }

    func unregister(fd: Int32) {
        // close() removes the fd from the epoll set; only our table needs clearing.
        if Int(fd) < sockets.count, sockets[Int(fd)] != nil {
            sockets[Int(fd)] = nil
            registeredSockets -= 1
        }
    }

    // MARK: Running

    /// Runs until `stop()`. Must be called from the thread that created the first tasks.
    public func run() {
        GlobalExecutorHook.install()
        threadID = pthread_self()
        running = true
        while running {
            iterations &+= 1
            let start = monotonicNanos()
            now = start
            runJobs()
            // Handlers read `now`: it must be the time the timers are fired at, or one that
            // re-arms at a deadline `now` has not reached yet (but the firing time has) is fired
            // again at once, forever.
            now = monotonicNanos()
            timers.fire(now: now)
            for hook in turnHooks { hook() }
            runJobs()
            while !atTurnEnd.isEmpty {
                let due = atTurnEnd
                atTurnEnd.removeAll(keepingCapacity: true)
                for h in due { h.turnEnded() }
            }
            now = monotonicNanos()
            busyNanos &+= now &- start
            guard running else { break }
            let timeout = jobs.isEmpty ? timers.timeoutMillis(now: now) : 0
            let n = epoll_wait(epfd, events, maxEvents, timeout)
            now = monotonicNanos()
            if n > 0 { dispatch(Int(n)) }
        }
        runJobs()
    }

    public func stop() { running = false }

    private func runJobs() {
        // Bound one batch so that I/O keeps being polled while tasks keep waking each other.
        var budget = max(jobs.count, 64)
        while budget > 0, let job = jobs.pop() {
            // On the serial executor alone: naming a task executor here would make every switch of our
            // tasks (which carry no preference, see `spawnOnLoop`) look like a change of executor.
            job.runSynchronously(on: asUnownedSerialExecutor())
            budget -= 1
        }
    }

    private func dispatch(_ n: Int) {
        let readMask = gh_epollin() | gh_epollrdhup() | gh_epollhup() | gh_epollerr()
        let writeMask = gh_epollout() | gh_epollhup() | gh_epollerr()
        for i in 0..<n {
            let ev = events[i]
            let data = ev.data.u64
            let fd = Int(UInt32(truncatingIfNeeded: data))
            let gen = UInt32(truncatingIfNeeded: data >> 32)
            guard fd < sockets.count, let socket = sockets[fd], socket.generation == gen else { continue }
            let flags = ev.events
            if flags & (gh_epollrdhup() | gh_epollhup() | gh_epollerr()) != 0 { socket.hangupReported() }
            if flags & readMask != 0 { socket.readReady() }
            if flags & writeMask != 0 { socket.writeReady() }
        }
    }
}

/// Something `EventLoop.callAtTurnEnd` calls back.
public protocol TurnEndHandler: AnyObject {
    func turnEnded()
}
