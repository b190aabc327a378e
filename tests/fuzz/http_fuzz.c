/*
 * libFuzzer target: the HTTP/1.1 request head parser and its helpers (%-decoding,
 * query parameters, header lists). Any crash, leak, sanitizer report or broken
 * invariant (a slice outside the input, a head longer than the input, a success
 * with an error status) is a failure.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *b, size_t len, str s)
{
    if (s.len && (s.s < b || s.s + s.len > b + len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy so that ASan sees any over-read */
    char *b = malloc(size ? size : 1);
    if (!b)
        return 0;
    memcpy(b, data, size);
    struct http_header hdrs[32];
    struct http_limits lim = { .max_head = size > 64 ? size - size / 8 : 4096, .max_headers = 32 };
    struct http_request r;
    ssize_t n = http_parse_request(b, size, &lim, &r, hdrs);
    if (n > 0) {
        if ((size_t)n > size || r.head_len != (size_t)n || r.err_status)
            abort();
        inside(b, size, r.method_name);
        inside(b, size, r.target);
        inside(b, size, r.path);
        inside(b, size, r.query);
        for (size_t i = 0; i < r.nhdrs; i++) {
            inside(b, size, r.hdrs[i].name);
            inside(b, size, r.hdrs[i].value);
            (void)http_list_has(r.hdrs[i].value, STR("close"));
        }
        char out[256];
        ssize_t d = http_pct_decode(r.path, out, sizeof out, false);
        if (d >= 0 && (size_t)d != strlen(out))
            abort(); /* no NUL may come out of a decoded path */
        str v = http_query_get(r.query, STR("with"));
        inside(b, size, v);
        if (v.s)
            (void)http_pct_decode(v, out, sizeof out, true);
        (void)http_header_get(&r, STR("Host"));
    } else if (n != -EAGAIN && (n != -EINVAL || !r.err_status || !r.err_reason)) {
        abort();
    }
    free(b);
    return 0;
}
