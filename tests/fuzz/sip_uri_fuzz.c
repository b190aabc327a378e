/*
 * libFuzzer target: URIs. The input is one URI, or two separated by a newline; parsing
 * must stay inside the input and equality (RFC 3261 §19.1.4) must be reflexive and
 * symmetric. Digest and Via parsers get the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    str all = str_make((const char *)data, size);
    const char *nl = memchr(data, '\n', size);
    str s1 = nl ? str_make(all.s, (size_t)(nl - all.s)) : all;
    str s2 = nl ? str_make(nl + 1, size - s1.len - 1) : all;
    struct sip_uri a, b;
    int ra = sip_uri_parse(s1, &a), rb = sip_uri_parse(s2, &b);
    if (ra == 0) {
        if (!sip_uri_eq(&a, &a))
            abort();
        if (a.host.len && (a.host.s < s1.s || a.host.s + a.host.len > s1.s + s1.len))
            abort();
        str v;
        sip_uri_param(&a, STR("transport"), &v);
    }
    if (ra == 0 && rb == 0 && sip_uri_eq(&a, &b) != sip_uri_eq(&b, &a))
        abort();
    struct sip_auth au;
    sip_auth_parse(all, &au);
    struct sip_via via;
    str rest;
    sip_via_parse(all, &via, &rest);
    struct sip_addr ad;
    sip_addr_parse(all, &ad, &rest, true);
    str first, params, pv;
    if (sip_value_split(all, &first, &params) == 0)
        sip_param_find(params, STR("expires"), &pv);
    char tmp[64];
    sip_unquote(s1, tmp, sizeof(tmp));
    return 0;
}
