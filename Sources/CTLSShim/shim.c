#include "CTLSShim.h"
#include <openssl/crypto.h>

const char *gh_openssl_version(void) { return OpenSSL_version(OPENSSL_VERSION); }
long gh_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
int gh_ssl_ctx_set_min_proto(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_min_proto_version(ctx, version); }
