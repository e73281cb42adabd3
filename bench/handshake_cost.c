// OpenSSL's own cost of one server-side TLS handshake on this machine: client and server in one
// process over a memory BIO pair (no network, no syscalls), timing only the server's calls
// (SSL_new, the handshake, SSL_free) with the thread CPU clock. The yardstick for a proxy's CPU
// per handshake.
//
// usage: handshake_cost CERT KEY MODE COUNT
//   MODE: tls13-x25519 | tls13-p256 | tls12
// prints: MODE microseconds-per-server-handshake
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "handshake_cost: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 5) die("usage: handshake_cost CERT KEY MODE COUNT");
    const char *mode = argv[3];
    int count = atoi(argv[4]);
    int tls12 = strcmp(mode, "tls12") == 0;
    const char *groups = strcmp(mode, "tls13-p256") == 0 ? "prime256v1" : "X25519";

    SSL_CTX *server = SSL_CTX_new(TLS_server_method());
    SSL_CTX *client = SSL_CTX_new(TLS_client_method());
    if (!server || !client) die("SSL_CTX_new");
    if (SSL_CTX_use_certificate_chain_file(server, argv[1]) != 1) die("certificate");
    if (SSL_CTX_use_PrivateKey_file(server, argv[2], SSL_FILETYPE_PEM) != 1) die("key");
    int version = tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(server, version);
    SSL_CTX_set_max_proto_version(server, version);
    SSL_CTX_set1_groups_list(server, groups);
    // TLS 1.2 also needs P-256 offered, for the ECDSA certificate's curve.
    SSL_CTX_set1_groups_list(client, tls12 ? "X25519:prime256v1" : groups);
    SSL_CTX_set_mode(server, SSL_MODE_RELEASE_BUFFERS);
    // Full handshakes only: no tickets, no cache (the proxies' listeners for this row are set alike).
    SSL_CTX_set_options(server, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(server, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(server, 0);

    double spent = 0;
    int timed = 0;
    for (int i = 0; i < count + 1; i++) {
        double t0 = cpu_seconds();
        SSL *s = SSL_new(server);
        spent += cpu_seconds() - t0;
        SSL *c = SSL_new(client);
        BIO *sb, *cb;
        if (!s || !c || BIO_new_bio_pair(&sb, 0, &cb, 0) != 1) die("SSL_new");
        SSL_set_bio(s, sb, sb);
        SSL_set_bio(c, cb, cb);
        SSL_set_accept_state(s);
        SSL_set_connect_state(c);
        int sdone = 0, cdone = 0;
        for (int round = 0; round < 20 && !(sdone && cdone); round++) {
            if (!cdone) cdone = SSL_do_handshake(c) == 1;
            t0 = cpu_seconds();
            if (!sdone) sdone = SSL_do_handshake(s) == 1;
            spent += cpu_seconds() - t0;
        }
        if (!(sdone && cdone)) die("handshake did not complete");
        t0 = cpu_seconds();
        SSL_free(s);
        spent += cpu_seconds() - t0;
        SSL_free(c);
        if (i == 0) spent = 0;  // the first one warms caches up and is not counted
        else timed++;
    }
    printf("%s %.1f\n", mode, spent / timed * 1e6);
    return 0;
}
