/*
 * http/api — the JSON API: login (tokens), the roaming contact list, message
 * history, presence rules. Data goes through the store thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>

#include "http/http_int.h"

int http__hmac_sha256(const void *key, size_t klen, const void *d, size_t n, uint8_t out[32])
{
    unsigned len = 32;
    return HMAC(EVP_sha256(), key, (int)klen, d, n, out, &len) ? 0 : -EIO;
}

int http__api_install(struct http_server *hs)
{
    (void)hs;
    return 0;
}

void http__api_free(struct http_server *hs)
{
    (void)hs;
}

int http_token_check(struct http_server *hs, str token, char *user_out)
{
    (void)hs;
    (void)token;
    (void)user_out;
    return -EACCES;
}
