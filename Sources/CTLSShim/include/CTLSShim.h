#ifndef GATEHOUSE_CTLSSHIM_H
#define GATEHOUSE_CTLSSHIM_H
#include <openssl/ssl.h>

/// The linked OpenSSL's version string ("OpenSSL 3.0.x ..."): proves at build time that libssl links.
const char *gh_openssl_version(void);
/// SSL_CTX_set_mode is a macro; wrapped so Swift can call it.
long gh_ssl_ctx_set_mode(SSL_CTX *ctx, long mode);
/// SSL_CTX_set_min_proto_version is a macro; wrapped so Swift can call it.
int gh_ssl_ctx_set_min_proto(SSL_CTX *ctx, int version);
#endif
