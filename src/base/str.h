/*
 * str — the one slice type: a pointer and a length into bytes owned by
 * someone else. Every parser in rtcd returns these; none copies.
 */
#ifndef RTCD_BASE_STR_H
#define RTCD_BASE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    const char *s;
    size_t len;
} str;

/* A slice over a string literal (its terminating NUL is not included). */
#define STR(lit) ((str){ "" lit, sizeof(lit) - 1 })
#define STR_NULL ((str){ NULL, 0 })
/* printf("%.*s", STR_FMT(x)) */
#define STR_FMT(x) (int)(x).len, (x).s

static inline str str_make(const char *s, size_t len)
{
    return (str){ s, len };
}

/* A slice over a NUL-terminated C string (NULL gives the empty slice). */
str str_cstr(const char *s);

static inline bool str_empty(str a)
{
    return a.len == 0;
}

bool str_eq(str a, str b);
/* ASCII case-insensitive equality (SIP tokens, header names, hosts). */
bool str_caseeq(str a, str b);
bool str_has_prefix(str s, str prefix);
bool str_has_caseprefix(str s, str prefix);

/* Index of the first occurrence of needle in hay, or -1. An empty needle is found at 0. */
ssize_t str_find(str hay, str needle);
/* Index of the first byte c in s, or -1. */
ssize_t str_find_char(str s, char c);

/* Without leading / trailing SP, HTAB, CR and LF. */
str str_trim(str s);
str str_ltrim(str s);
str str_rtrim(str s);

/* Bytes [off, off+len) clamped to s. */
str str_sub(str s, size_t off, size_t len);
/* s without its first n bytes (clamped). */
str str_skip(str s, size_t n);

/*
 * Decimal to integer. The whole slice must be digits (an optional leading '-'
 * for str_to_i64 only). Returns 0 and sets *out, -EINVAL on an empty slice or
 * any other byte, -ERANGE on overflow. *out is untouched on failure.
 */
int str_to_u32(str s, uint32_t *out);
int str_to_u64(str s, uint64_t *out);
int str_to_i64(str s, int64_t *out);

/*
 * Copies the slice into dst (size cap) with a terminating NUL. Returns the
 * length copied, or -ENOSPC (dst left empty) when it does not fit.
 */
ssize_t str_copy(char *dst, size_t cap, str s);

/* A new malloc'd NUL-terminated copy, or NULL on allocation failure. Caller frees. */
char *str_dup(str s);

/* ASCII lower-casing table, shared by the case-insensitive helpers. */
extern const unsigned char str_lower_table[256];

static inline unsigned char str_lower(unsigned char c)
{
    return str_lower_table[c];
}

#endif
