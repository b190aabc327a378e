/*
 * STUN codec: the RFC 5769 test vectors byte for byte (decode, verify and
 * re-encode), integrity/fingerprint tampering, malformed input against a
 * guard page, and the credential helpers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "stun/stun.h"

static const uint8_t tid5769[12] = { 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                     0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae };
static const char pass5769[] = "VOkJxbRl1RmTxUk/WvJxBt";

/* RFC 5769 §2.1 Sample Request */
static const uint8_t req21[] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
    0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74,
    0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e,
    0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
    0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20,
    0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
    0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5,
    0x7a, 0x3b, 0xcf,
};

/* RFC 5769 §2.2 Sample IPv4 Response */
static const uint8_t resp22[] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
    0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
    0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01,
    0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99,
    0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b,
    0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* RFC 5769 §2.3 Sample IPv6 Response */
static const uint8_t resp23[] = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
    0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
    0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01,
    0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9,
    0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb,
    0x0b, 0x4c,
};

static const uint8_t *key5769 = (const uint8_t *)pass5769;
#define KEYLEN (sizeof pass5769 - 1)

static void test_rfc5769_request(void **state)
{
    (void)state;
    struct stun_msg m;
    assert_int_equal(stun_decode(req21, sizeof req21, &m), sizeof req21);
    assert_int_equal(m.method, STUN_BINDING);
    assert_int_equal(m.cls, STUN_REQUEST);
    assert_memory_equal(m.tid, tid5769, 12);
    assert_int_equal(m.nattrs, 6);
    static const uint16_t types[] = { 0x8022, 0x0024, 0x8029, 0x0006, 0x0008, 0x8028 };
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(m.attrs[i].type, types[i]);
    const struct stun_attr *u = stun_attr_find(&m, STUN_A_USERNAME);
    assert_non_null(u);
    assert_int_equal(u->len, 9);
    assert_memory_equal(u->val, "evtj:h6vY", 9);
    assert_true(stun_check_integrity(&m, key5769, KEYLEN, false));
    assert_true(stun_check_fingerprint(&m));
    assert_false(stun_check_integrity(&m, (const uint8_t *)"wrong", 5, false));
    assert_false(stun_check_integrity(&m, key5769, KEYLEN, true)); /* no SHA256 attribute */

    /* Re-encoded with the vector's space padding: the same bytes exactly. */
    uint8_t out[256];
    struct stun_enc e;
    stun_enc_init(&e, out, sizeof out, 0x0001, tid5769);
    e.pad = ' ';
    stun_enc_attr(&e, STUN_A_SOFTWARE, "STUN test client", 16);
    stun_enc_u32(&e, STUN_A_PRIORITY, 0x6e0001ff);
    static const uint8_t tie[8] = { 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36 };
    stun_enc_attr(&e, STUN_A_ICE_CONTROLLED, tie, 8);
    stun_enc_attr(&e, STUN_A_USERNAME, "evtj:h6vY", 9);
    stun_enc_integrity(&e, key5769, KEYLEN);
    stun_enc_fingerprint(&e);
    assert_int_equal(stun_enc_finish(&e), sizeof req21);
    assert_memory_equal(out, req21, sizeof req21);
}

static void check_response(const uint8_t *vec, size_t len, const struct sockaddr *want)
{
    struct stun_msg m;
    assert_int_equal(stun_decode(vec, len, &m), (int)len);
    assert_int_equal(m.cls, STUN_SUCCESS);
    assert_true(stun_check_integrity(&m, key5769, KEYLEN, false));
    assert_true(stun_check_fingerprint(&m));
    const struct stun_attr *x = stun_attr_find(&m, STUN_A_XOR_MAPPED_ADDRESS);
    assert_non_null(x);
    struct sockaddr_storage got;
    assert_int_equal(stun_attr_xor_addr(&m, x, &got), 0);
    if (want->sa_family == AF_INET)
        assert_memory_equal(&got, want, sizeof(struct sockaddr_in));
    else
        assert_memory_equal(&got, want, sizeof(struct sockaddr_in6));

    uint8_t out[256];
    struct stun_enc e;
    stun_enc_init(&e, out, sizeof out, 0x0101, tid5769);
    e.pad = ' ';
    stun_enc_attr(&e, STUN_A_SOFTWARE, "test vector", 11);
    stun_enc_xor_addr(&e, STUN_A_XOR_MAPPED_ADDRESS, want);
    stun_enc_integrity(&e, key5769, KEYLEN);
    stun_enc_fingerprint(&e);
    assert_int_equal(stun_enc_finish(&e), (int)len);
    assert_memory_equal(out, vec, len);
}

static void test_rfc5769_ipv4(void **state)
{
    (void)state;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(32853) };
    inet_pton(AF_INET, "192.0.2.1", &a.sin_addr);
    check_response(resp22, sizeof resp22, (struct sockaddr *)&a);
}

static void test_rfc5769_ipv6(void **state)
{
    (void)state;
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(32853) };
    inet_pton(AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677", &a.sin6_addr);
    check_response(resp23, sizeof resp23, (struct sockaddr *)&a);
}

static void test_tamper(void **state)
{
    (void)state;
    uint8_t b[sizeof resp22];
    struct stun_msg m;
    for (size_t i = 0; i < sizeof b - 8; i++) {
        if (i == 2 || i == 3)
            continue; /* the length: would change the framing, not the MAC input */
        memcpy(b, resp22, sizeof b);
        b[i] ^= 0x01;
        if (stun_decode(b, sizeof b, &m) < 0)
            continue;
        /* Every covered byte breaks the MAC (bytes before MI) or the CRC. */
        assert_false(stun_check_integrity(&m, key5769, KEYLEN, false) &&
                     stun_check_fingerprint(&m));
    }
}

static void test_sha256_roundtrip(void **state)
{
    (void)state;
    uint8_t out[256];
    struct stun_enc e;
    stun_enc_init(&e, out, sizeof out, TURN_ALLOCATE, tid5769);
    stun_enc_u32(&e, TURN_A_REQUESTED_TRANSPORT, 17u << 24);
    stun_enc_integrity(&e, (const uint8_t *)"k", 1);
    stun_enc_integrity_sha256(&e, (const uint8_t *)"k", 1);
    stun_enc_fingerprint(&e);
    int n = stun_enc_finish(&e);
    assert_true(n > 0);
    struct stun_msg m;
    assert_int_equal(stun_decode(out, (size_t)n, &m), n);
    assert_true(m.mi >= 0 && m.mi256 >= 0 && m.fp >= 0);
    assert_true(stun_check_integrity(&m, (const uint8_t *)"k", 1, false));
    assert_true(stun_check_integrity(&m, (const uint8_t *)"k", 1, true));
    assert_false(stun_check_integrity(&m, (const uint8_t *)"K", 1, true));
    assert_true(stun_check_fingerprint(&m));
    assert_int_equal(m.method, TURN_ALLOCATE);
}

static void test_after_integrity(void **state)
{
    (void)state;
    uint8_t out[256];
    struct stun_enc e;
    stun_enc_init(&e, out, sizeof out, 0x0001, tid5769);
    stun_enc_integrity(&e, (const uint8_t *)"k", 1);
    stun_enc_attr(&e, STUN_A_USERNAME, "late", 4); /* ignored: after MI */
    int n = stun_enc_finish(&e);
    struct stun_msg m;
    assert_int_equal(stun_decode(out, (size_t)n, &m), n);
    assert_null(stun_attr_find(&m, STUN_A_USERNAME));
    /* Nothing may follow FINGERPRINT. */
    stun_enc_init(&e, out, sizeof out, 0x0001, tid5769);
    stun_enc_fingerprint(&e);
    stun_enc_attr(&e, STUN_A_SOFTWARE, "x", 1);
    n = stun_enc_finish(&e);
    assert_int_equal(stun_decode(out, (size_t)n, &m), -EPROTO);
}

static void test_malformed(void **state)
{
    (void)state;
    struct stun_msg m;
    uint8_t b[sizeof req21];
    /* Every prefix: needs more bytes, never success, never a crash. */
    for (size_t n = 0; n < sizeof req21; n++)
        assert_int_equal(stun_decode(req21, n, &m), -EAGAIN);
    memcpy(b, req21, sizeof b);
    b[4] = 0; /* cookie */
    assert_int_equal(stun_decode(b, sizeof b, &m), -EPROTO);
    memcpy(b, req21, sizeof b);
    b[0] = 0xC0; /* top bits */
    assert_int_equal(stun_decode(b, sizeof b, &m), -EPROTO);
    memcpy(b, req21, sizeof b);
    b[3] = 0x57; /* length not a multiple of 4 */
    assert_int_equal(stun_decode(b, sizeof b, &m), -EPROTO);
    memcpy(b, req21, sizeof b);
    b[23] = 0xF0; /* SOFTWARE runs past the end */
    assert_int_equal(stun_decode(b, sizeof b, &m), -EPROTO);
    memcpy(b, req21, sizeof b);
    b[sizeof b - 5] = 8; /* FINGERPRINT of 8 bytes */
    assert_int_equal(stun_decode(b, sizeof b, &m), -EPROTO);
    memcpy(b, req21, sizeof b);
    b[79] = 0x10; /* MESSAGE-INTEGRITY of 16 bytes */
    assert_int_equal(stun_decode(b, sizeof b, &m), -EPROTO);

    /* Too many attributes. */
    uint8_t big[20 + 4 * (STUN_MAX_ATTRS + 1)];
    struct stun_enc e;
    stun_enc_init(&e, big, sizeof big, 0x0001, tid5769);
    for (int i = 0; i <= STUN_MAX_ATTRS; i++)
        stun_enc_attr(&e, 0x8030, NULL, 0);
    int n = stun_enc_finish(&e);
    assert_int_equal(n, (int)sizeof big);
    assert_int_equal(stun_decode(big, sizeof big, &m), -E2BIG);
    /* The encoder refuses to overflow its buffer. */
    stun_enc_init(&e, big, 24, 0x0001, tid5769);
    stun_enc_attr(&e, STUN_A_SOFTWARE, "abcdefgh", 8);
    assert_int_equal(stun_enc_finish(&e), -ENOSPC);
}

/* Decodes every prefix and every single-byte variation of v placed against a guard page. */
static void test_guard_page(void **state)
{
    (void)state;
    long pg = sysconf(_SC_PAGESIZE);
    uint8_t *mem = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    assert_true(mem != MAP_FAILED);
    assert_int_equal(mprotect(mem + pg, (size_t)pg, PROT_NONE), 0);
    const uint8_t *vecs[] = { req21, resp22, resp23 };
    size_t lens[] = { sizeof req21, sizeof resp22, sizeof resp23 };
    struct stun_msg m;
    for (int v = 0; v < 3; v++) {
        for (size_t n = 0; n <= lens[v]; n++) {
            uint8_t *p = mem + pg - n;
            memcpy(p, vecs[v], n);
            (void)stun_decode(p, n, &m);
            (void)stun_frame_len(p, n, true);
            (void)stun_is_stun(p, n);
        }
        uint8_t *p = mem + pg - lens[v];
        for (size_t i = 0; i < lens[v]; i++) {
            for (int bit = 0; bit < 8; bit++) {
                memcpy(p, vecs[v], lens[v]);
                p[i] ^= (uint8_t)(1 << bit);
                if (stun_decode(p, lens[v], &m) > 0) {
                    for (size_t k = 0; k < m.nattrs; k++) {
                        struct sockaddr_storage ss;
                        uint32_t u;
                        int code;
                        str r;
                        (void)stun_attr_xor_addr(&m, &m.attrs[k], &ss);
                        (void)stun_attr_u32(&m.attrs[k], &u);
                        (void)stun_attr_error(&m.attrs[k], &code, &r);
                    }
                    (void)stun_check_integrity(&m, key5769, KEYLEN, false);
                    (void)stun_check_fingerprint(&m);
                }
            }
        }
    }
    munmap(mem, (size_t)pg * 2);
}

static void test_error_and_unknown(void **state)
{
    (void)state;
    uint8_t out[128];
    struct stun_enc e;
    stun_enc_init(&e, out, sizeof out, 0x0111, tid5769);
    stun_enc_error(&e, 420, "Unknown Attribute");
    uint16_t unk[] = { 0x7f01, 0x0002, 0x0003 };
    stun_enc_unknown(&e, unk, 3);
    int n = stun_enc_finish(&e);
    struct stun_msg m;
    assert_int_equal(stun_decode(out, (size_t)n, &m), n);
    assert_int_equal(m.cls, STUN_ERROR);
    int code;
    str reason;
    assert_int_equal(stun_attr_error(stun_attr_find(&m, STUN_A_ERROR_CODE), &code, &reason), 0);
    assert_int_equal(code, 420);
    assert_true(str_eq(reason, STR("Unknown Attribute")));
    const struct stun_attr *u = stun_attr_find(&m, STUN_A_UNKNOWN_ATTRIBUTES);
    assert_int_equal(u->len, 6);
    assert_int_equal(u->val[0] << 8 | u->val[1], 0x7f01);
    /* Padding of the 6-byte value to 8: the message stays 4-aligned. */
    assert_int_equal(n % 4, 0);
}

static void test_frame_len(void **state)
{
    (void)state;
    uint8_t cd[12] = { 0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0 };
    assert_int_equal(stun_frame_len(cd, 12, true), 12); /* padded on streams */
    assert_int_equal(stun_frame_len(cd, 12, false), 9);
    assert_int_equal(stun_frame_len(cd, 8, true), -EAGAIN);
    assert_int_equal(stun_frame_len(req21, 50, true), -EAGAIN);
    assert_int_equal(stun_frame_len(req21, sizeof req21, true), sizeof req21);
    uint8_t junk[8] = { 0x80, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(stun_frame_len(junk, 8, true), -EPROTO);
}

static void test_credentials(void **state)
{
    (void)state;
    char pw[32];
    turn_rest_password(STR("secret"), STR("1700000000:alice"), pw);
    assert_string_equal(pw, "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
    uint8_t key[16];
    static const uint8_t want[16] = { 0xdb, 0x25, 0xea, 0x61, 0x0c, 0x2a, 0x95, 0x5b,
                                      0x77, 0xb2, 0x72, 0x27, 0x3c, 0xbe, 0x88, 0x6b };
    stun_long_term_key(STR("alice"), STR("example.org"), STR("pw"), key);
    assert_memory_equal(key, want, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5769_request), cmocka_unit_test(test_rfc5769_ipv4),
        cmocka_unit_test(test_rfc5769_ipv6),    cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_sha256_roundtrip), cmocka_unit_test(test_after_integrity),
        cmocka_unit_test(test_malformed),       cmocka_unit_test(test_guard_page),
        cmocka_unit_test(test_error_and_unknown), cmocka_unit_test(test_frame_len),
        cmocka_unit_test(test_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
