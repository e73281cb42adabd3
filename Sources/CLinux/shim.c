#define _GNU_SOURCE 1
#include "CLinux.h"
#include <string.h>

int gh_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

void gh_heap_stats(uint64_t *in_use, uint64_t *free_bytes) {
    struct mallinfo2 mi = mallinfo2();
    *in_use = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
    *free_bytes = (uint64_t)mi.fordblks;
}

int gh_signalfd_open(void) {
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
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
