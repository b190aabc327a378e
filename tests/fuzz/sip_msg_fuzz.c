/*
 * libFuzzer target: the SIP message parser in datagram and stream modes, the stream
 * framer and every on-demand accessor. Any crash, leak, sanitizer report or broken
 * invariant (slices outside the input) is a failure.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "sip/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *b, size_t len, str s)
{
    if (s.len && (s.s < b || s.s + s.len > b + len))
        abort();
}

static void deep(struct sip_msg *m, const char *b, size_t len)
{
    struct arena *a;
    if (arena_new(&a, 0, 0) < 0)
        return;
    const struct sip_via *v;
    const struct sip_addr *c;
    const struct sip_auth *au;
    size_t n;
    if (sip_msg_vias(m, a, &v, &n) == 0) {
        if (n != m->nvia)
            abort();
        for (size_t i = 0; i < n; i++)
            inside(b, len, v[i].branch);
    }
    if (sip_msg_contacts(m, a, &c, &n) == 0)
        for (size_t i = 0; i < n; i++) {
            struct sip_uri u;
            inside(b, len, c[i].uri);
            if (!c[i].star && sip_uri_parse(c[i].uri, &u) == 0 && !sip_uri_eq(&u, &u))
                abort();
        }
    sip_msg_routes(m, a, &c, &n);
    sip_msg_record_routes(m, a, &c, &n);
    sip_msg_auth(m, a, SIP_H_AUTHORIZATION, &au);
    sip_msg_auth(m, a, SIP_H_PROXY_AUTHENTICATE, &au);
    struct sip_value_iter it = { 0 };
    str val;
    while (sip_msg_values_next(m, SIP_H_SUPPORTED, &it, &val))
        inside(b, len, val);
    arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    struct sip_limits lim = { 4096, 40, 1024 };
    struct sip_hdr hdrs[64];
    struct sip_msg m;
    sip_msg_init(&m, hdrs, 64);
    ssize_t rc = sip_msg_parse(&m, b, size, &lim, SIP_PARSE_DATAGRAM);
    if (rc > (ssize_t)size)
        abort();
    if (rc > 0) {
        inside(b, size, m.body);
        for (size_t i = 0; i < m.nhdrs; i++) {
            inside(b, size, m.hdrs[i].value);
            if (m.hdrs[i].off + m.hdrs[i].len > size)
                abort();
        }
        if (m.nvia == 0 || m.cseq.num > 0x7fffffffu)
            abort();
        deep(&m, b, size);
    } else if (m.err.code == SIP_E_NONE || m.err.status < 400) {
        abort();
    }
    size_t n = 0;
    int fr = sip_frame(b, size, &lim, &n, NULL);
    if (fr > 0 && (n == 0 || n > size))
        abort();
    if (fr == SIP_FRAME_MSG) {
        rc = sip_msg_parse(&m, b, n, &lim, SIP_PARSE_STREAM);
        if (rc > 0)
            deep(&m, b, n);
    }
    return 0;
}
