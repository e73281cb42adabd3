// Session ticket keys made by this process and rotated on a schedule: a ticket is encrypted with
// the current key; one made with the previous key is still accepted (and renewed), so a client's
// ticket stays valid for between one and two rotation periods. One key ring per process: every
// listener shares it, and only the loop thread calls in, so no lock.
#include "CTLSShim.h"
#include <openssl/rand.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <string.h>

struct gh_ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    int valid;
};

static struct gh_ticket_key keys[2];  // [0] current, [1] previous
static unsigned long issued, resumedCurrent, resumedPrevious, refused;
static int fixedKey;  // an operator's key is in use: no rotation

int gh_ticket_keys_use(const unsigned char key[80]) {
    memcpy(keys[0].name, key, 16);
    memcpy(keys[0].aes, key + 16, 32);
    memcpy(keys[0].hmac, key + 48, 32);
    keys[0].valid = 1;
    OPENSSL_cleanse(&keys[1], sizeof keys[1]);
    fixedKey = 1;
    return 1;
}

int gh_ticket_keys_rotate(void) {
    if (fixedKey) return 1;
    struct gh_ticket_key k;
    if (RAND_bytes(k.name, sizeof k.name) <= 0 || RAND_bytes(k.aes, sizeof k.aes) <= 0 ||
        RAND_bytes(k.hmac, sizeof k.hmac) <= 0) return 0;
    k.valid = 1;
    keys[1] = keys[0];
    keys[0] = k;
    OPENSSL_cleanse(&k, sizeof k);
    return 1;
}

static int gh_ticket_cb(SSL *s, unsigned char keyName[16], unsigned char *iv, EVP_CIPHER_CTX *cipher,
                        EVP_MAC_CTX *mac, int encrypt) {
    (void)s;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (encrypt) {
        if (!keys[0].valid) return 0;
        if (RAND_bytes(iv, 16) <= 0) return -1;
        memcpy(keyName, keys[0].name, 16);
        if (!EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, keys[0].aes, iv)) return -1;
        if (!EVP_MAC_init(mac, keys[0].hmac, sizeof keys[0].hmac, params)) return -1;
        issued++;
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        if (!keys[i].valid || memcmp(keyName, keys[i].name, 16) != 0) continue;
        if (!EVP_MAC_init(mac, keys[i].hmac, sizeof keys[i].hmac, params)) return -1;
        if (!EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, keys[i].aes, iv)) return -1;
        if (i == 0) { resumedCurrent++; return 1; }
        resumedPrevious++;
        return 2;  // valid, but issue a new ticket under the current key
    }
    refused++;
    return 0;  // unknown key: full handshake
}

int gh_ssl_ctx_use_ticket_keys(SSL_CTX *ctx) {
    if (!keys[0].valid && !gh_ticket_keys_rotate()) return 0;
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, gh_ticket_cb) == 1;
}

void gh_ticket_stats(unsigned long *i, unsigned long *c, unsigned long *p, unsigned long *u) {
    *i = issued;
    *c = resumedCurrent;
    *p = resumedPrevious;
    *u = refused;
}
