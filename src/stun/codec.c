/*
 * codec — STUN message decoding and encoding (RFC 8489 §5, §14), the
 * integrity and fingerprint checks, and the credential helpers (long-term
 * key, TURN REST password). No allocation, no sockets.
 */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "stun/stun.h"

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t crc_table[256];
static atomic_int crc_ready;

static void crc_init(void)
{
    if (atomic_load_explicit(&crc_ready, memory_order_acquire))
        return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
    atomic_store_explicit(&crc_ready, 1, memory_order_release);
}

/* CRC-32 as used by FINGERPRINT (the same as zlib's). */
uint32_t stun_crc32(const uint8_t *p, size_t n)
{
    crc_init();
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* Whether p starts like a STUN message. Never reads past n. */
bool stun_is_stun(const uint8_t *p, size_t n)
{
    return n >= STUN_HEADER_LEN && (p[0] & 0xC0) == 0 && rd32(p + 4) == STUN_MAGIC;
}

/* See stun.h. */
int stun_decode(const uint8_t *p, size_t n, struct stun_msg *m)
{
    if (n < STUN_HEADER_LEN)
        return -EAGAIN;
    if ((p[0] & 0xC0) != 0 || rd32(p + 4) != STUN_MAGIC)
        return -EPROTO;
    size_t alen = rd16(p + 2);
    if (alen % 4 != 0)
        return -EPROTO;
    if (n < STUN_HEADER_LEN + alen)
        return -EAGAIN;
    m->type = rd16(p);
    m->cls = m->type & 0x0110;
    m->method = (uint16_t)((m->type & 0x000F) | ((m->type & 0x00E0) >> 1) |
                           ((m->type & 0x3E00) >> 2));
    memcpy(m->tid, p + 8, 12);
    m->raw = p;
    m->len = STUN_HEADER_LEN + alen;
    m->nattrs = 0;
    m->mi = m->mi256 = m->fp = -1;

    size_t off = STUN_HEADER_LEN;
    while (off < m->len) {
        if (m->len - off < 4)
            return -EPROTO;
        uint16_t type = rd16(p + off), vlen = rd16(p + off + 2);
        size_t padded = ((size_t)vlen + 3) & ~(size_t)3;
        if (padded > m->len - off - 4)
            return -EPROTO;
        if (m->fp >= 0)
            return -EPROTO; /* nothing may follow FINGERPRINT */
        bool keep = true;
        if (type == STUN_A_FINGERPRINT) {
            if (vlen != 4)
                return -EPROTO;
        } else if (type == STUN_A_MESSAGE_INTEGRITY) {
            if (m->mi >= 0 || m->mi256 >= 0)
                keep = false; /* after integrity: ignored */
            else if (vlen != 20)
                return -EPROTO;
        } else if (type == STUN_A_MESSAGE_INTEGRITY_SHA256) {
            if (m->mi256 >= 0)
                keep = false;
            else if (vlen < 16 || vlen > 32 || vlen % 4 != 0)
                return -EPROTO;
        } else if (m->mi >= 0 || m->mi256 >= 0) {
            keep = false;
        }
        if (keep) {
            if (m->nattrs == STUN_MAX_ATTRS)
                return -E2BIG;
            struct stun_attr *a = &m->attrs[m->nattrs];
            a->type = type;
            a->len = vlen;
            a->off = (uint16_t)off;
            a->val = p + off + 4;
            if (type == STUN_A_FINGERPRINT)
                m->fp = (int)m->nattrs;
            else if (type == STUN_A_MESSAGE_INTEGRITY)
                m->mi = (int)m->nattrs;
            else if (type == STUN_A_MESSAGE_INTEGRITY_SHA256)
                m->mi256 = (int)m->nattrs;
            m->nattrs++;
        }
        off += 4 + padded;
    }
    return (int)m->len;
}

/* See stun.h. */
const struct stun_attr *stun_attr_find(const struct stun_msg *m, uint16_t t)
{
    for (size_t i = 0; i < m->nattrs; i++)
        if (m->attrs[i].type == t)
            return &m->attrs[i];
    return NULL;
}

static int read_addr(const struct stun_attr *a, const uint8_t *xor16, uint16_t xport,
                     struct sockaddr_storage *out)
{
    if (a->len < 4)
        return -EPROTO;
    uint8_t fam = a->val[1];
    uint16_t port = rd16(a->val + 2) ^ xport;
    memset(out, 0, sizeof *out);
    if (fam == 1 && a->len == 8) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)out;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        uint8_t b[4];
        for (int i = 0; i < 4; i++)
            b[i] = a->val[4 + i] ^ xor16[i];
        memcpy(&s4->sin_addr, b, 4);
        return 0;
    }
    if (fam == 2 && a->len == 20) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        for (int i = 0; i < 16; i++)
            s6->sin6_addr.s6_addr[i] = a->val[4 + i] ^ xor16[i];
        return 0;
    }
    return -EPROTO;
}

/* See stun.h. */
int stun_attr_xor_addr(const struct stun_msg *m, const struct stun_attr *a,
                       struct sockaddr_storage *out)
{
    uint8_t x[16];
    wr32(x, STUN_MAGIC);
    memcpy(x + 4, m->tid, 12);
    return read_addr(a, x, STUN_MAGIC >> 16, out);
}

/* See stun.h. */
int stun_attr_addr(const struct stun_attr *a, struct sockaddr_storage *out)
{
    static const uint8_t zero[16];
    return read_addr(a, zero, 0, out);
}

/* See stun.h. */
int stun_attr_u32(const struct stun_attr *a, uint32_t *out)
{
    if (a->len != 4)
        return -EPROTO;
    *out = rd32(a->val);
    return 0;
}

/* See stun.h. */
int stun_attr_error(const struct stun_attr *a, int *code, str *reason)
{
    if (a->len < 4)
        return -EPROTO;
    int cls = a->val[2] & 0x07, num = a->val[3];
    if (cls < 3 || cls > 6 || num > 99)
        return -EPROTO;
    *code = cls * 100 + num;
    *reason = str_make((const char *)a->val + 4, a->len - 4u);
    return 0;
}

/* See stun.h. */
bool stun_check_fingerprint(const struct stun_msg *m)
{
    if (m->fp < 0)
        return false;
    const struct stun_attr *a = &m->attrs[m->fp];
    /* The length field already covers the FINGERPRINT (it is last). */
    uint32_t want = stun_crc32(m->raw, a->off) ^ 0x5354554eu;
    return rd32(a->val) == want;
}

/*
 * HMAC over the message up to attribute a, with the header length rewritten
 * to end just after a (RFC 8489 §14.5).
 */
static EVP_MAC *hmac_alg(void)
{
    static _Atomic(EVP_MAC *) alg;
    EVP_MAC *m = atomic_load(&alg);
    if (!m) {
        EVP_MAC *fresh = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC *expect = NULL;
        if (fresh && !atomic_compare_exchange_strong(&alg, &expect, fresh))
            EVP_MAC_free(fresh); /* another thread won */
        m = atomic_load(&alg);
    }
    return m;
}

/*
 * HMAC over the message up to attribute a (at off, alen value bytes), with the
 * header length rewritten to end just after a (RFC 8489 §14.5). out gets 20
 * or 32 bytes; *outlen 0 on failure.
 */
static void integrity_mac(const uint8_t *raw, uint16_t off, size_t alen, const uint8_t *key,
                          size_t keylen, bool sha256, uint8_t *out, unsigned *outlen)
{
    uint8_t hdr[STUN_HEADER_LEN];
    memcpy(hdr, raw, STUN_HEADER_LEN);
    wr16(hdr + 2, (uint16_t)(off + 4 + alen - STUN_HEADER_LEN));
    static const uint8_t k0[1];
    *outlen = 0;
    EVP_MAC *alg = hmac_alg();
    EVP_MAC_CTX *c = alg ? EVP_MAC_CTX_new(alg) : NULL;
    if (!c)
        return;
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string("digest", (char *)(sha256 ? "SHA256" : "SHA1"), 0),
        OSSL_PARAM_construct_end(),
    };
    size_t n = 0;
    if (EVP_MAC_init(c, keylen ? key : k0, keylen, params) == 1 &&
        EVP_MAC_update(c, hdr, STUN_HEADER_LEN) == 1 &&
        EVP_MAC_update(c, raw + STUN_HEADER_LEN, (size_t)off - STUN_HEADER_LEN) == 1 &&
        EVP_MAC_final(c, out, &n, 32) == 1)
        *outlen = (unsigned)n;
    EVP_MAC_CTX_free(c);
}

/* See stun.h. */
bool stun_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t keylen,
                          bool sha256)
{
    int i = sha256 ? m->mi256 : m->mi;
    if (i < 0)
        return false;
    const struct stun_attr *a = &m->attrs[i];
    uint8_t mac[32];
    unsigned maclen = 0;
    integrity_mac(m->raw, a->off, a->len, key, keylen, sha256, mac, &maclen);
    if (a->len > maclen)
        return false;
    return CRYPTO_memcmp(mac, a->val, a->len) == 0;
}

/* See stun.h. */
void stun_enc_init(struct stun_enc *e, uint8_t *p, size_t cap, uint16_t type,
                   const uint8_t tid[12])
{
    e->p = p;
    e->cap = cap;
    e->len = 0;
    e->err = 0;
    e->pad = 0;
    if (cap < STUN_HEADER_LEN) {
        e->err = -ENOSPC;
        return;
    }
    wr16(p, type);
    wr16(p + 2, 0);
    wr32(p + 4, STUN_MAGIC);
    memcpy(p + 8, tid, 12);
    e->len = STUN_HEADER_LEN;
}

/* Reserves an attribute of len value bytes; returns where the value goes or NULL. */
static uint8_t *enc_reserve(struct stun_enc *e, uint16_t type, size_t len)
{
    if (e->err)
        return NULL;
    size_t padded = (len + 3) & ~(size_t)3;
    if (len > 0xFFFF || e->cap - e->len < 4 + padded || e->len + 4 + padded > 0xFFFF + 20) {
        e->err = -ENOSPC;
        return NULL;
    }
    uint8_t *a = e->p + e->len;
    wr16(a, type);
    wr16(a + 2, (uint16_t)len);
    if (padded > len)
        memset(a + 4 + len, e->pad, padded - len);
    e->len += 4 + padded;
    wr16(e->p + 2, (uint16_t)(e->len - STUN_HEADER_LEN));
    return a + 4;
}

/* See stun.h. */
void stun_enc_attr(struct stun_enc *e, uint16_t type, const void *val, size_t len)
{
    uint8_t *v = enc_reserve(e, type, len);
    if (v && len)
        memcpy(v, val, len);
}

/* See stun.h. */
void stun_enc_u32(struct stun_enc *e, uint16_t type, uint32_t val)
{
    uint8_t *v = enc_reserve(e, type, 4);
    if (v)
        wr32(v, val);
}

/* See stun.h. */
void stun_enc_xor_addr(struct stun_enc *e, uint16_t type, const struct sockaddr *sa)
{
    if (e->err)
        return;
    uint8_t x[16];
    wr32(x, STUN_MAGIC);
    memcpy(x + 4, e->p + 8, 12);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        uint8_t *v = enc_reserve(e, type, 8);
        if (!v)
            return;
        v[0] = 0;
        v[1] = 1;
        wr16(v + 2, ntohs(s4->sin_port) ^ (uint16_t)(STUN_MAGIC >> 16));
        memcpy(v + 4, &s4->sin_addr, 4);
        for (int i = 0; i < 4; i++)
            v[4 + i] ^= x[i];
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        uint8_t *v = enc_reserve(e, type, 20);
        if (!v)
            return;
        v[0] = 0;
        v[1] = 2;
        wr16(v + 2, ntohs(s6->sin6_port) ^ (uint16_t)(STUN_MAGIC >> 16));
        for (int i = 0; i < 16; i++)
            v[4 + i] = s6->sin6_addr.s6_addr[i] ^ x[i];
    } else {
        e->err = -EAFNOSUPPORT;
    }
}

/* See stun.h. */
void stun_enc_error(struct stun_enc *e, int code, const char *reason)
{
    size_t rl = strlen(reason);
    if (rl > 763)
        rl = 763;
    uint8_t *v = enc_reserve(e, STUN_A_ERROR_CODE, 4 + rl);
    if (!v)
        return;
    v[0] = v[1] = 0;
    v[2] = (uint8_t)(code / 100);
    v[3] = (uint8_t)(code % 100);
    memcpy(v + 4, reason, rl);
}

/* See stun.h. */
void stun_enc_unknown(struct stun_enc *e, const uint16_t *types, size_t n)
{
    uint8_t *v = enc_reserve(e, STUN_A_UNKNOWN_ATTRIBUTES, 2 * n);
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        wr16(v + 2 * i, types[i]);
}

static void enc_mac(struct stun_enc *e, uint16_t type, const uint8_t *key, size_t keylen,
                    bool sha256)
{
    size_t mlen = sha256 ? 32 : 20;
    size_t off = e->len;
    uint8_t *v = enc_reserve(e, type, mlen);
    if (!v)
        return;
    uint8_t mac[32];
    unsigned maclen = 0;
    integrity_mac(e->p, (uint16_t)off, mlen, key, keylen, sha256, mac, &maclen);
    memcpy(v, mac, mlen);
}

/* See stun.h. */
void stun_enc_integrity(struct stun_enc *e, const uint8_t *key, size_t keylen)
{
    enc_mac(e, STUN_A_MESSAGE_INTEGRITY, key, keylen, false);
}

/* See stun.h. */
void stun_enc_integrity_sha256(struct stun_enc *e, const uint8_t *key, size_t keylen)
{
    enc_mac(e, STUN_A_MESSAGE_INTEGRITY_SHA256, key, keylen, true);
}

/* See stun.h. */
void stun_enc_fingerprint(struct stun_enc *e)
{
    size_t off = e->len;
    uint8_t *v = enc_reserve(e, STUN_A_FINGERPRINT, 4);
    if (v)
        wr32(v, stun_crc32(e->p, off) ^ 0x5354554eu);
}

/* See stun.h. */
int stun_enc_finish(const struct stun_enc *e)
{
    return e->err ? e->err : (int)e->len;
}

/* See stun.h. */
int stun_frame_len(const uint8_t *p, size_t n, bool stream)
{
    if (n < 4)
        return -EAGAIN;
    if ((p[0] & 0xC0) == 0) {
        size_t len = STUN_HEADER_LEN + (size_t)rd16(p + 2);
        if (rd16(p + 2) % 4 != 0)
            return -EPROTO;
        if (n >= 8 && rd32(p + 4) != STUN_MAGIC)
            return -EPROTO;
        return n < len ? -EAGAIN : (int)len;
    }
    if ((p[0] & 0xC0) == 0x40) {
        size_t len = 4 + (size_t)rd16(p + 2);
        if (stream)
            len = (len + 3) & ~(size_t)3;
        return n < len ? -EAGAIN : (int)len;
    }
    return -EPROTO;
}

/* See stun.h. */
void stun_long_term_key(str user, str realm, str password, uint8_t key[16])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned len = 16;
    if (!c) {
        memset(key, 0, 16);
        return;
    }
    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    EVP_DigestUpdate(c, user.s, user.len);
    EVP_DigestUpdate(c, ":", 1);
    EVP_DigestUpdate(c, realm.s, realm.len);
    EVP_DigestUpdate(c, ":", 1);
    EVP_DigestUpdate(c, password.s, password.len);
    EVP_DigestFinal_ex(c, key, &len);
    EVP_MD_CTX_free(c);
}

/* See stun.h. */
void turn_rest_password(str secret, str username, char out[32])
{
    uint8_t mac[20];
    unsigned len = 0;
    HMAC(EVP_sha1(), secret.s ? secret.s : "", (int)secret.len, (const uint8_t *)username.s,
         username.len, mac, &len);
    EVP_EncodeBlock((unsigned char *)out, mac, 20);
}
