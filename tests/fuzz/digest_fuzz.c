/*
 * libFuzzer target: Authorization header values through digest_creds_parse and,
 * when they parse, digest_verify / digest_verify_unknown (nonce decoding, nc
 * parsing, response comparison); also the location table's AOR and contact-key
 * normalisers on the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sip/digest.h"
#include "svc/location.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct digest_ctx *d;
    if (!d && digest_new(&d, "fuzzing secret, 32 bytes long...", 32, NULL) < 0)
        abort();
    str in = str_make((const char *)data, size);
    struct digest_creds c;
    if (digest_creds_parse(in, &c) == 0) {
        char ha1[DIGEST_HEX_MAX];
        enum digest_alg alg;
        if (digest_alg_parse(c.algorithm, &alg) == 0 &&
            digest_ha1(alg, c.username, c.realm, STR("pw"), ha1) == 0) {
            enum digest_result r =
                digest_verify(d, &c, STR("REGISTER"), c.realm, str_cstr(ha1), 1000);
            if (r == DIGEST_OK && c.response.len == 0)
                abort();
        }
        if (digest_verify_unknown(d, &c, STR("INVITE"), c.realm, 1000) == DIGEST_OK)
            abort();
        digest_nonce_check(d, c.nonce, c.realm, 1000);
    }
    char out[LOC_AOR_MAX + 1];
    loc_aor_normalise(in, out, sizeof out);
    char key[512];
    loc_contact_key(in, key, sizeof key);
    return 0;
}
