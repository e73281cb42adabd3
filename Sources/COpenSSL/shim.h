#ifndef GATEHOUSE_COPENSSL_H
#define GATEHOUSE_COPENSSL_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#endif
