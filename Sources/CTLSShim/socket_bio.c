// A socket BIO that also says when a read found the socket drained (a short read or EAGAIN).
// With edge-triggered epoll that is exactly when the next read could only say EAGAIN, so the
// TLS stream can wait for readiness instead of making that read: one syscall less per request.
// Writes use send(MSG_NOSIGNAL).
#include "CTLSShim.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct gh_sock { int fd; int drained; };

static int gh_sock_read(BIO *b, char *buf, int len) {
    struct gh_sock *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = read(s->fd, buf, (size_t)len);
        if (n >= 0) {
            if (n < len) s->drained = 1;
            return (int)n;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s->drained = 1;
            BIO_set_retry_read(b);
        }
        return -1;
    }
}

static int gh_sock_write(BIO *b, const char *buf, int len) {
    struct gh_sock *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = send(s->fd, buf, (size_t)len, MSG_NOSIGNAL);
        if (n >= 0) return (int)n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
        return -1;
    }
}

static int gh_sock_puts(BIO *b, const char *str) {
    int len = 0;
    while (str[len]) len++;
    return gh_sock_write(b, str, len);
}

static long gh_sock_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)b; (void)num; (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int gh_sock_destroy(BIO *b) {
    free(BIO_get_data(b));
    BIO_set_data(b, NULL);
    return 1;
}

static BIO_METHOD *gh_sock_method;

BIO *gh_bio_new_socket(int fd) {
    if (gh_sock_method == NULL) {  // only the loop thread calls in
        BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gatehouse socket");
        if (m == NULL) return NULL;
        BIO_meth_set_read(m, gh_sock_read);
        BIO_meth_set_write(m, gh_sock_write);
        BIO_meth_set_puts(m, gh_sock_puts);
        BIO_meth_set_ctrl(m, gh_sock_ctrl);
        BIO_meth_set_destroy(m, gh_sock_destroy);
        gh_sock_method = m;
    }
    struct gh_sock *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    BIO *b = BIO_new(gh_sock_method);
    if (b == NULL) { free(s); return NULL; }
    s->fd = fd;
    BIO_set_data(b, s);
    BIO_set_init(b, 1);
    return b;
}

int gh_bio_take_drained(BIO *b) {
    struct gh_sock *s = BIO_get_data(b);
    int d = s->drained;
    s->drained = 0;
    return d;
}
