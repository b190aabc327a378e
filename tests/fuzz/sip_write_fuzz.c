/*
 * libFuzzer target: the writer's round trip. A request that parses is forwarded with
 * edits (new Request-URI, Via and Record-Route on top, first Route popped, Max-Forwards
 * decremented, a header added, one removed, one replaced); the result must parse again
 * and equal the edited original header by header. A response built from it must parse.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "sip/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) \
    do { \
        if (!(c)) \
            abort(); \
    } while (0)

static bool untouched(const struct sip_hdr *h)
{
    return h->id != SIP_H_VIA && h->id != SIP_H_ROUTE && h->id != SIP_H_MAX_FORWARDS &&
           h->id != SIP_H_SUBJECT && h->id != SIP_H_USER_AGENT && h->id != SIP_H_RECORD_ROUTE &&
           h->id != SIP_H_CONTENT_LENGTH && !(h->id == SIP_H_OTHER && str_caseeq(h->name, STR("X-Fuzz")));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sip_limits lim = { 8192, 60, 2048 }, big = { 65536, 200, 65536 };
    static struct sip_hdr h1[200], h2[200];
    struct sip_msg m, f;
    sip_msg_init(&m, h1, 60);
    if (sip_msg_parse(&m, (const char *)data, size, &lim, SIP_PARSE_DATAGRAM) <= 0 ||
        !m.is_request || m.max_forwards == 0)
        return 0;
    const struct sip_hdr_edit edits[] = {
        { SIP_EDIT_ADD, SIP_H_OTHER, STR("X-Fuzz"), STR("added") },
        { SIP_EDIT_REMOVE, SIP_H_SUBJECT, STR_NULL, STR_NULL },
        { SIP_EDIT_REPLACE, SIP_H_USER_AGENT, STR_NULL, STR("rtcd-fuzz") },
    };
    struct sip_fwd fw = {
        .ruri = STR("sip:target@example.net;transport=tcp"),
        .via = STR("SIP/2.0/TCP proxy.example.com:5060;branch=z9hG4bKfuzz1"),
        .record_route = STR("<sip:proxy.example.com;lr>"),
        .pop_route = true,
        .dec_max_forwards = true,
        .edits = edits,
        .nedits = 3,
    };
    struct buf out;
    buf_init(&out, 1 << 20);
    CHECK(sip_msg_forward(&m, &fw, &out) == 0);
    sip_msg_init(&f, h2, 200);
    ssize_t rc = sip_msg_parse(&f, (const char *)out.data, out.len, &big, SIP_PARSE_DATAGRAM);
    CHECK(rc == (ssize_t)out.len);
    CHECK(str_eq(f.ruri_raw, fw.ruri));
    CHECK(str_eq(f.via.raw, STR("SIP/2.0/TCP proxy.example.com:5060;branch=z9hG4bKfuzz1")));
    CHECK(f.nvia == m.nvia + 1);
    CHECK(f.max_forwards == (m.max_forwards < 0 ? 70 : m.max_forwards - 1));
    CHECK(str_eq(f.call_id, m.call_id) && f.cseq.num == m.cseq.num);
    CHECK(str_eq(f.body, m.body));
    CHECK(sip_msg_hdr(&f, SIP_H_SUBJECT) == NULL);
    const struct sip_hdr *ua = sip_msg_hdr(&f, SIP_H_USER_AGENT);
    CHECK((ua != NULL) == (sip_msg_hdr(&m, SIP_H_USER_AGENT) != NULL));
    CHECK(str_eq(sip_msg_hdr(&f, SIP_H_RECORD_ROUTE)->value, STR("<sip:proxy.example.com;lr>")));
    /* the untouched headers, in order, byte for byte */
    size_t j = 0;
    for (size_t i = 0; i < m.nhdrs; i++) {
        if (!untouched(&m.hdrs[i]))
            continue;
        while (j < f.nhdrs && !untouched(&f.hdrs[j]))
            j++;
        CHECK(j < f.nhdrs);
        CHECK(str_eq(m.hdrs[i].name, f.hdrs[j].name) && str_eq(m.hdrs[i].value, f.hdrs[j].value));
        j++;
    }
    while (j < f.nhdrs && !untouched(&f.hdrs[j]))
        j++;
    CHECK(j == f.nhdrs);

    /* a response to the original parses and keeps the transaction keys */
    buf_reset(&out);
    const struct sip_hdr_add extra[] = { { STR("Server"), STR("rtcd") } };
    CHECK(sip_msg_respond(&m, 200, STR_NULL, STR("fz1"), extra, 1, STR_NULL, STR_NULL, &out) ==
          0);
    sip_msg_init(&f, h2, 200);
    rc = sip_msg_parse(&f, (const char *)out.data, out.len, &big, SIP_PARSE_DATAGRAM);
    CHECK(rc == (ssize_t)out.len);
    CHECK(f.status == 200 && f.nvia == m.nvia && str_eq(f.via.branch, m.via.branch));
    CHECK(str_eq(f.call_id, m.call_id) && f.cseq.num == m.cseq.num);
    CHECK(m.to.tag.len ? str_eq(f.to.tag, m.to.tag) : str_eq(f.to.tag, STR("fz1")));
    buf_free(&out);
    return 0;
}
