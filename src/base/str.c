/*
 * str — comparison, search, trimming and number conversion on slices.
 */
#include "base/str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define L8(b) b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7
#define L32(b) L8(b), L8(b + 8), L8(b + 16), L8(b + 24)
const unsigned char str_lower_table[256] = {
    L32(0), L32(32),
    /* 64 '@', then 'A'..'Z' map to 'a'..'z' */
    64, L8(97), L8(105), L8(113), 121, 122, 91, 92, 93, 94, 95,
    L32(96), L32(128), L32(160), L32(192), L32(224),
};
#undef L32
#undef L8

str str_cstr(const char *s)
{
    if (!s)
        return STR_NULL;
    return (str){ s, strlen(s) };
}

bool str_eq(str a, str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.s, b.s, a.len) == 0);
}

bool str_caseeq(str a, str b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (str_lower_table[(unsigned char)a.s[i]] != str_lower_table[(unsigned char)b.s[i]])
            return false;
    return true;
}

bool str_has_prefix(str s, str prefix)
{
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.s, prefix.s, prefix.len) == 0);
}

bool str_has_caseprefix(str s, str prefix)
{
    return s.len >= prefix.len && str_caseeq(str_make(s.s, prefix.len), prefix);
}

ssize_t str_find(str hay, str needle)
{
    if (needle.len == 0)
        return 0;
    if (needle.len > hay.len)
        return -1;
    const char *p = memmem(hay.s, hay.len, needle.s, needle.len);
    return p ? p - hay.s : -1;
}

ssize_t str_find_char(str s, char c)
{
    if (s.len == 0)
        return -1;
    const char *p = memchr(s.s, c, s.len);
    return p ? p - s.s : -1;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

str str_ltrim(str s)
{
    while (s.len && is_ws(s.s[0])) {
        s.s++;
        s.len--;
    }
    return s;
}

str str_rtrim(str s)
{
    while (s.len && is_ws(s.s[s.len - 1]))
        s.len--;
    return s;
}

str str_trim(str s)
{
    return str_rtrim(str_ltrim(s));
}

str str_sub(str s, size_t off, size_t len)
{
    if (off >= s.len)
        return (str){ s.s ? s.s + s.len : NULL, 0 };
    if (len > s.len - off)
        len = s.len - off;
    return (str){ s.s + off, len };
}

str str_skip(str s, size_t n)
{
    return str_sub(s, n, SIZE_MAX);
}

int str_to_u64(str s, uint64_t *out)
{
    if (s.len == 0)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned char)s.s[i] - '0';
        if (d > 9)
            return -EINVAL;
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int str_to_u32(str s, uint32_t *out)
{
    uint64_t v;
    int rc = str_to_u64(s, &v);
    if (rc < 0)
        return rc;
    if (v > UINT32_MAX)
        return -ERANGE;
    *out = (uint32_t)v;
    return 0;
}

int str_to_i64(str s, int64_t *out)
{
    bool neg = s.len > 0 && s.s[0] == '-';
    uint64_t v;
    int rc = str_to_u64(neg ? str_skip(s, 1) : s, &v);
    if (rc < 0)
        return rc;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -ERANGE;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > INT64_MAX)
            return -ERANGE;
        *out = (int64_t)v;
    }
    return 0;
}

ssize_t str_copy(char *dst, size_t cap, str s)
{
    if (cap == 0)
        return -ENOSPC;
    if (s.len >= cap) {
        dst[0] = '\0';
        return -ENOSPC;
    }
    if (s.len)
        memcpy(dst, s.s, s.len);
    dst[s.len] = '\0';
    return (ssize_t)s.len;
}

char *str_dup(str s)
{
    char *p = malloc(s.len + 1);
    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.s, s.len);
    p[s.len] = '\0';
    return p;
}
