/*
 * sip_int.h — internals shared by the files of src/sip (character classes, the
 * generated header table, error helpers). Not for callers outside src/sip.
 */
#ifndef RTCD_SIP_INT_H
#define RTCD_SIP_INT_H

#include <stdarg.h>

#include "sip/msg.h"

enum { SIP__HF_LIST = 1, SIP__HF_SINGLE = 2 };

struct sip__hdr_desc {
    const char *name;
    const char *compact;
    unsigned flags;
};
extern const struct sip__hdr_desc sip__hdr_desc[SIP_H__COUNT];
enum sip_hdr_id sip__hdr_lookup(const char *s, size_t n);

/* character classes (bit flags in sip__cc) */
enum {
    SIP__C_TOKEN = 1,   /* RFC 3261 token */
    SIP__C_WS = 2,      /* SP HT CR LF: linear white space inside a (folded) value */
    SIP__C_DIGIT = 4,
    SIP__C_ALPHA = 8,
    SIP__C_HEX = 16,
    SIP__C_UNRES = 32,  /* unreserved = alphanum / mark */
    SIP__C_WORD = 64,   /* RFC 3261 word (Call-ID) */
    SIP__C_SCHEME = 128 /* ALPHA DIGIT + - . */
};
extern const uint8_t sip__cc[256];

/* URI character sets (bit flags in sip__uc) */
enum {
    SIP__U_USER = 1,   /* unreserved / user-unreserved */
    SIP__U_PASS = 2,   /* unreserved / & = + $ , */
    SIP__U_PARAM = 4,  /* paramchar without escapes */
    SIP__U_HDR = 8,    /* hname / hvalue chars and the & = separators */
    SIP__U_TELPAR = 16, /* paramchar and '=' (tel: parameters) */
    SIP__U_TELNUM = 32, /* tel: number digits and visual separators */
    SIP__U_ANY = 64,    /* visible ASCII but < > " (a URI's bytes, light check) */
    SIP__U_HOST = 128   /* hostname / IPv4 bytes: alphanumeric - . _ */
};
extern const uint8_t sip__uc[256];

static inline bool sip__is(unsigned char c, unsigned cls)
{
    return (sip__cc[c] & cls) != 0;
}

/* skips LWS (SP HT CR LF) */
static inline size_t sip__skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && sip__is((unsigned char)s[i], SIP__C_WS))
        i++;
    return i;
}

static inline str sip__trim(str s)
{
    size_t b = 0, e = s.len;
    while (b < e && sip__is((unsigned char)s.s[b], SIP__C_WS))
        b++;
    while (e > b && sip__is((unsigned char)s.s[e - 1], SIP__C_WS))
        e--;
    return str_make(s.s + b, e - b);
}

/* s equals the lower-case literal lit, ASCII case-insensitively */
#define SIP__LCEQ(s, lit) sip__lceq((s), "" lit, sizeof(lit) - 1)
static inline bool sip__lceq(str s, const char *lit, size_t n)
{
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (str_lower((unsigned char)s.s[i]) != (unsigned char)lit[i])
            return false;
    return true;
}

/* Sets err: code, status and a printf-built reason (sanitised to printable ASCII).
 * Returns the errno to return (-EPROTO or -EMSGSIZE). */
int sip__fail(struct sip_error *err, enum sip_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A printable, bounded excerpt of s for use in reasons: at most 40 bytes. */
#define SIP__EXCERPT(x) (int)((x).len > 40 ? 40 : (x).len), (x).s

/* Empties a URI struct (cheaper than memset). */
void sip__uri_clear(struct sip_uri *u);

/* Deep parsers with a why-string for reasons. */
int sip__via_parse(str s, struct sip_via *out, str *rest, const char **why);
int sip__addr_parse(str s, struct sip_addr *out, str *rest, bool list, const char **why);
/* Splits one comma-separated value (quotes, <> respected). */
str sip__next_value(str *rest);
/* a token scan: returns end index */
static inline size_t sip__token_end(const char *s, size_t i, size_t n)
{
    while (i < n && sip__is((unsigned char)s[i], SIP__C_TOKEN))
        i++;
    return i;
}
/* parses a host[:port] at s (sent-by / hostport). Returns bytes consumed or -1. */
ssize_t sip__hostport(const char *s, size_t n, str *host, enum sip_host_type *type,
                      uint16_t *port, bool *has_port);

#endif
