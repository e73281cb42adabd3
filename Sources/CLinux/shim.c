#define _GNU_SOURCE 1
#include "CLinux.h"
#include <string.h>
#include <spawn.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <fcntl.h>

int gh_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

void gh_heap_stats(uint64_t *in_use, uint64_t *free_bytes) {
    struct mallinfo2 mi = mallinfo2();
    *in_use = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
    *free_bytes = (uint64_t)mi.fordblks;
}

/// The signals a gatehouse process takes from a signalfd: TERM, INT (drain), HUP, USR1 (reopen).
static void taken_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

int gh_signalfd_open(void) {
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    taken_signals(&set);
    sigaddset(&set, SIGQUIT);  // one process: stop at once (a worker ignores it: its supervisor decides)
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int gh_heap_trim(void) { return malloc_trim(0); }

#include <sys/ioctl.h>
#include <linux/sockios.h>

int gh_unsent_bytes(int fd) {
    int n = 0;
    return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
}

/// The concurrency runtime's global-enqueue hook, referenced directly so that it resolves both
/// against the shared runtime and against a statically linked one (where dlsym finds nothing).
extern void *swift_task_enqueueGlobal_hook;
void **gh_enqueue_global_hook(void) { return &swift_task_enqueueGlobal_hook; }

int gh_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, const int *targets, int n) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    for (int i = 0; i < n; i++) posix_spawn_file_actions_adddup2(&actions, fds[i], targets[i]);
    // The child starts with the signals it takes from a signalfd blocked, so none of them can
    // end it before it gets there; everything else unblocked and at its default.
    sigset_t mask, all;
    taken_signals(&mask);
    sigaddset(&mask, SIGQUIT);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc == 0 ? (int)pid : -rc;
}

int gh_supervisor_signalfd(void) {
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    taken_signals(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGQUIT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC);
}

int gh_die_with_parent(int parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) return -1;
    return getppid() == parent ? 0 : -1;
}

int gh_usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int gh_memfd(const char *name, uint64_t size) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void gh_block_signals(void) {
    sigset_t set;
    taken_signals(&set);
    sigaddset(&set, SIGQUIT);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

int gh_pipe_nonblocking(int fds[2]) {
    return pipe2(fds, O_CLOEXEC | O_NONBLOCK);
}
