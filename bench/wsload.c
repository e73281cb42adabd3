// WebSocket load for bench/websocket: an echo server and a load client, one epoll thread each.
//
//   wsload server PORT                       handshake (Sec-WebSocket-Accept by SHA-1), then echo every byte
//   wsload client PORT CONNS SECONDS SIZE    CONNS connections; each sends one masked binary frame of SIZE
//                                            payload bytes and waits for as many bytes back, again and again
//                                            for SECONDS; prints "messages N seconds S"
//   wsload idle PORT CONNS SECONDS           CONNS connections, handshaken, then silent for SECONDS;
//                                            prints "ready N" when all are open
//
// The server echoes the client's frame bytes unchanged (masked), not a re-framed message: after the
// 101 a proxy relays bytes, so what crosses it is the same either way, and the server costs less.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536
#define GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct conn { int fd; int open; size_t have; size_t want; char buf[BUF]; };

static void die(const char *m) { perror(m); exit(1); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }

static void write_all(int fd, const void *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) { usleep(100); continue; }
        if (w <= 0) die("send");
        p = (const char *)p + w; n -= (size_t)w;
    }
}

// ---- server ----

static int server_handshake(struct conn *c) {
    if (c->have >= BUF - 1) return -1;
    c->buf[c->have] = 0;
    char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    if (!end) return 0;
    char *k = strcasestr(c->buf, "Sec-WebSocket-Key:");
    if (!k || k > end) return -1;
    k += 18;
    while (*k == ' ') k++;
    char key[128]; size_t n = 0;
    while (k[n] != '\r' && n < 60) { key[n] = k[n]; n++; }
    memcpy(key + n, GUID, strlen(GUID));
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((unsigned char *)key, n + strlen(GUID), sha);
    char accept[64];
    EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);
    char resp[256];
    int len = snprintf(resp, sizeof resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    write_all(c->fd, resp, (size_t)len);
    size_t rest = c->have - (size_t)(end + 4 - c->buf);
    if (rest) write_all(c->fd, end + 4, rest);
    c->have = 0;
    c->open = 1;
    return 1;
}

static void server(int port) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4096)) die("listen");
    nonblock(l);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    printf("wsload listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept(l, NULL, NULL)) >= 0) {
                    nonblock(fd);
                    c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                }
                continue;
            }
            for (;;) {
                ssize_t r = recv(c->fd, c->buf + c->have, BUF - c->have, 0);
                if (r < 0 && errno == EAGAIN) break;
                if (r <= 0) { close(c->fd); free(c); break; }
                if (c->open) { write_all(c->fd, c->buf, (size_t)r); continue; }
                c->have += (size_t)r;
                if (server_handshake(c) < 0) { close(c->fd); free(c); break; }
            }
        }
    }
}

// ---- client ----

static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) die("connect");
    const char *req = "GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    write_all(fd, req, strlen(req));
    char buf[1024]; size_t have = 0;
    while (!memmem(buf, have, "\r\n\r\n", 4)) {
        ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
        if (r <= 0) die("handshake");
        have += (size_t)r;
    }
    if (strncmp(buf, "HTTP/1.1 101", 12) != 0) { fprintf(stderr, "wsload: no 101: %.*s\n", (int)have, buf); exit(1); }
    nonblock(fd);
    return fd;
}

static size_t frame(unsigned char *f, size_t size) {
    size_t h = 0;
    f[h++] = 0x82;
    if (size < 126) f[h++] = 0x80 | (unsigned char)size;
    else { f[h++] = 0x80 | 126; f[h++] = (unsigned char)(size >> 8); f[h++] = (unsigned char)size; }
    memset(f + h, 0, 4);  // the masking key: zero, so the payload goes as it is
    h += 4;
    memset(f + h, 'w', size);
    return h + size;
}

static void client(int port, int conns, double seconds, size_t size, int idle) {
    static unsigned char msg[70000];
    if (size > 65535) size = 65535;
    size_t len = frame(msg, size);
    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    for (int i = 0; i < conns; i++) {
        cs[i].fd = dial(port);
        struct epoll_event e = { .events = EPOLLIN, .data.ptr = &cs[i] };
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &e);
    }
    printf("ready %d\n", conns);
    fflush(stdout);
    if (idle) { sleep((unsigned)seconds); return; }
    long messages = 0;
    double start = now(), end = start + seconds;
    for (int i = 0; i < conns; i++) { write_all(cs[i].fd, msg, len); cs[i].want = len; }
    struct epoll_event evs[512];
    while (now() < end) {
        int n = epoll_wait(ep, evs, 512, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            for (;;) {
                ssize_t r = recv(c->fd, c->buf, BUF, 0);
                if (r < 0 && errno == EAGAIN) break;
                if (r <= 0) die("recv");
                c->have += (size_t)r;
                while (c->have >= c->want) {
                    c->have -= c->want;
                    messages++;
                    write_all(c->fd, msg, len);
                }
            }
        }
    }
    printf("messages %ld seconds %.3f\n", messages, now() - start);
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "server")) server(atoi(argv[2]));
    else if (argc >= 6 && !strcmp(argv[1], "client")) client(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), (size_t)atol(argv[5]), 0);
    else if (argc >= 5 && !strcmp(argv[1], "idle")) client(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), 16, 1);
    else { fprintf(stderr, "usage: see the top of wsload.c\n"); return 2; }
    return 0;
}
