#ifndef GATEHOUSE_CTLSSHIM_H
#define GATEHOUSE_CTLSSHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>

/// The linked OpenSSL's version string ("OpenSSL 3.0.x ..."): proves at build time that libssl links.
const char *gh_openssl_version(void);

// OpenSSL macros Swift cannot import, wrapped as functions.
long gh_ssl_ctx_set_mode(SSL_CTX *ctx, long mode);
int gh_ssl_ctx_set_min_proto(SSL_CTX *ctx, int version);
int gh_ssl_ctx_set_max_proto(SSL_CTX *ctx, int version);
int gh_ssl_ctx_set_groups(SSL_CTX *ctx, const char *list);
long gh_ssl_ctx_set_session_cache_mode(SSL_CTX *ctx, long mode);
long gh_ssl_ctx_set_session_cache_size(SSL_CTX *ctx, long size);
long gh_ssl_ctx_sess_hits(SSL_CTX *ctx);
long gh_ssl_ctx_sess_misses(SSL_CTX *ctx);
long gh_ssl_ctx_sess_number(SSL_CTX *ctx);
long gh_ssl_ctx_set_num_tickets(SSL_CTX *ctx, size_t n);
void gh_ssl_ctx_set_read_ahead(SSL_CTX *ctx, int yes);
/// SSL_set_tlsext_host_name is a macro: the SNI name a client sends.
int gh_ssl_set_sni(SSL *ssl, const char *name);

/// The protocol policy options (their SSL_OP_ macros are casts Swift cannot import): renegotiation
/// refused, compression off, a missing close_notify read as EOF, and tickets on or off.
void gh_ssl_ctx_set_policy_options(SSL_CTX *ctx, int tickets);

/// Chooses the SSL_CTX for a server name as the client sent it; NULL keeps the default.
typedef SSL_CTX *(*gh_sni_select_fn)(const char *name, void *arg);
/// Installs an SNI callback that switches the connection to `select(name)`'s context.
int gh_ssl_ctx_set_sni(SSL_CTX *ctx, gh_sni_select_fn select, void *arg);

/// Installs ALPN selection: the first of `protos` (wire format: length-prefixed names) that the
/// client offers; a client offering ALPN but none of these is refused with no_application_protocol.
int gh_ssl_ctx_set_alpn(SSL_CTX *ctx, const unsigned char *protos, unsigned int len);

/// Session tickets with keys this process makes and rotates (see tickets.c).
int gh_ssl_ctx_use_ticket_keys(SSL_CTX *ctx);
/// Makes a new current ticket key; the previous one still decrypts until the next rotation.
int gh_ticket_keys_rotate(void);
/// Uses an operator's key (16 name, 32 AES, 32 HMAC bytes) as the only one: processes sharing a
/// port then all read each other's tickets. Rotation no longer applies.
int gh_ticket_keys_use(const unsigned char key[80]);
/// Tickets issued, resumed with the current key, resumed with the previous key (renewed), refused.
void gh_ticket_stats(unsigned long *issued, unsigned long *current, unsigned long *previous, unsigned long *unknown);

/// A socket BIO over `fd` that remembers when a read found the socket drained (see socket_bio.c).
BIO *gh_bio_new_socket(int fd);
/// Whether a read since the last call found the socket drained (short read or EAGAIN); clears it.
int gh_bio_take_drained(BIO *bio);

/// The verified peer certificate's subject (RFC 2253) into buf; its length, or -1 when there is
/// no verified certificate.
int gh_ssl_peer_subject(SSL *ssl, char *buf, int len);

/// The reason code of the earliest error on OpenSSL's queue (0 if none), and its text.
unsigned long gh_err_peek_reason(void);
void gh_err_text(char *buf, size_t len);
#endif
