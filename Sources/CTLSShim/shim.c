#include "CTLSShim.h"
#include <openssl/crypto.h>
#include <string.h>

const char *gh_openssl_version(void) { return OpenSSL_version(OPENSSL_VERSION); }
long gh_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
int gh_ssl_ctx_set_min_proto(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_min_proto_version(ctx, version); }
int gh_ssl_ctx_set_max_proto(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_max_proto_version(ctx, version); }
int gh_ssl_ctx_set_groups(SSL_CTX *ctx, const char *list) { return (int)SSL_CTX_set1_groups_list(ctx, list); }
long gh_ssl_ctx_set_session_cache_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_session_cache_mode(ctx, mode); }
long gh_ssl_ctx_set_session_cache_size(SSL_CTX *ctx, long size) { return SSL_CTX_sess_set_cache_size(ctx, size); }
long gh_ssl_ctx_sess_hits(SSL_CTX *ctx) { return SSL_CTX_sess_hits(ctx); }
long gh_ssl_ctx_sess_misses(SSL_CTX *ctx) { return SSL_CTX_sess_misses(ctx); }
long gh_ssl_ctx_sess_number(SSL_CTX *ctx) { return SSL_CTX_sess_number(ctx); }
long gh_ssl_ctx_set_num_tickets(SSL_CTX *ctx, size_t n) { return SSL_CTX_set_num_tickets(ctx, n); }
void gh_ssl_ctx_set_read_ahead(SSL_CTX *ctx, int yes) { SSL_CTX_set_read_ahead(ctx, yes); }
int gh_ssl_set_sni(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }

void gh_ssl_ctx_set_policy_options(SSL_CTX *ctx, int tickets) {
    uint64_t op = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF;
    if (!tickets) op |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(ctx, op);
}

struct gh_sni { gh_sni_select_fn select; void *arg; };

static int gh_sni_cb(SSL *ssl, int *alert, void *arg) {
    (void)alert;
    const struct gh_sni *s = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL) return SSL_TLSEXT_ERR_NOACK;
    SSL_CTX *chosen = s->select(name, s->arg);
    if (chosen != NULL && chosen != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, chosen);
    return SSL_TLSEXT_ERR_OK;
}

int gh_ssl_ctx_set_sni(SSL_CTX *ctx, gh_sni_select_fn select, void *arg) {
    // Lives as long as the context, which lives as long as the process.
    struct gh_sni *s = malloc(sizeof *s);
    if (s == NULL) return 0;
    s->select = select;
    s->arg = arg;
    SSL_CTX_set_tlsext_servername_callback(ctx, gh_sni_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, s);
    return 1;
}

struct gh_alpn { unsigned int len; unsigned char protos[]; };

static int gh_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                      const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl;
    const struct gh_alpn *a = arg;
    unsigned char *selected = NULL;
    unsigned char selectedLen = 0;
    if (SSL_select_next_proto(&selected, &selectedLen, a->protos, a->len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = selected;
    *outlen = selectedLen;
    return SSL_TLSEXT_ERR_OK;
}

int gh_ssl_ctx_set_alpn(SSL_CTX *ctx, const unsigned char *protos, unsigned int len) {
    struct gh_alpn *a = malloc(sizeof *a + len);
    if (a == NULL) return 0;
    a->len = len;
    memcpy(a->protos, protos, len);
    SSL_CTX_set_alpn_select_cb(ctx, gh_alpn_cb, a);
    return 1;
}

int gh_ssl_peer_subject(SSL *ssl, char *buf, int len) {
    if (SSL_get_verify_result(ssl) != X509_V_OK) return -1;
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (cert == NULL) return -1;
    BIO *bio = BIO_new(BIO_s_mem());
    int n = -1;
    if (bio != NULL && X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_read(bio, buf, len);
        if (n < 0) n = 0;
    }
    BIO_free(bio);
    X509_free(cert);
    return n;
}

unsigned long gh_err_peek_reason(void) { return ERR_GET_REASON(ERR_peek_error()); }

void gh_err_text(char *buf, size_t len) {
    unsigned long e = ERR_peek_error();
    if (e == 0) { if (len) buf[0] = 0; return; }
    ERR_error_string_n(e, buf, len);
}
