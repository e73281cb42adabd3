#ifndef GATEHOUSE_CLINUX_H
#define GATEHOUSE_CLINUX_H
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <signal.h>
#include <malloc.h>
#include <stdint.h>

/// accept4 needs _GNU_SOURCE, which Swift's Glibc import does not define.
int gh_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
/// One mallinfo2 (it walks every free list, so callers ask once): heap bytes in use (uordblks +
/// hblkhd, the allocator's own view, not RSS) and free bytes malloc holds (fordblks, what
/// malloc_trim could give back).
void gh_heap_stats(uint64_t *in_use, uint64_t *free_bytes);
/// Gives free heap pages back to the kernel (malloc_trim(0)); returns 1 if it released any.
int gh_heap_trim(void);
/// Bytes in a socket's send queue the peer has not acknowledged yet (SIOCOUTQ); -1 on error.
int gh_unsent_bytes(int fd);
/// Blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1 and returns a non-blocking signalfd that reports them; SIGPIPE is ignored.
int gh_signalfd_open(void);
/// Starts `path` with `argv` and `envp`, every signal at its default and unblocked but for the
/// ones a signalfd takes (TERM, INT, HUP, USR1, QUIT), and each
/// fds[i] duplicated to targets[i] (where it is not closed on exec). Returns the pid, or -errno.
/// posix_spawn, not fork: a Swift process may have threads of its runtime.
int gh_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, const int *targets, int n);
/// The supervisor's signals: blocks CHLD, TERM, INT, HUP, QUIT and USR1 and returns a blocking
/// signalfd that reports them; SIGPIPE is ignored.
int gh_supervisor_signalfd(void);
/// A pipe whose ends close on exec and never block: 0, or -1 with errno.
int gh_pipe_nonblocking(int fds[2]);
/// An anonymous shared-memory file of `size` bytes (memfd, sparse until touched); -1 on error.
int gh_memfd(const char *name, uint64_t size);
static inline uint64_t gh_load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline uint64_t gh_load_relaxed(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void gh_store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void gh_store_relaxed(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void gh_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
static inline void gh_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
/// Blocks TERM, INT, HUP, USR1 and QUIT in this thread (and what it starts), so none can end the
/// process before its signalfd is there to take them.
void gh_block_signals(void);
/// CPUs this process may run on (its affinity mask); at least 1.
int gh_usable_cpus(void);
/// Asks for SIGTERM when the parent process dies: 0, or -1 when `parent` is already gone.
int gh_die_with_parent(int parent);

/// The address of the Swift concurrency runtime's `swift_task_enqueueGlobal_hook` variable.
void **gh_enqueue_global_hook(void);

static inline uint32_t gh_epollin(void) { return EPOLLIN; }
static inline uint32_t gh_epollout(void) { return EPOLLOUT; }
static inline uint32_t gh_epollerr(void) { return EPOLLERR; }
static inline uint32_t gh_epollhup(void) { return EPOLLHUP; }
static inline uint32_t gh_epollrdhup(void) { return EPOLLRDHUP; }
static inline uint32_t gh_epollet(void) { return EPOLLET; }
#endif
