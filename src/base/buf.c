/*
 * buf — growable byte buffer with a hard cap.
 */
#include "base/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : SIZE_MAX;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (extra > b->max - b->len)
        return -ENOBUFS;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max)
        cap = b->max;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = buf_reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int buf_append_str(struct buf *b, str s)
{
    return buf_append(b, s.s, s.len);
}

int buf_append_byte(struct buf *b, uint8_t c)
{
    return buf_append(b, &c, 1);
}

int buf_append_u64(struct buf *b, uint64_t v)
{
    char d[20];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_append(b, d + i, sizeof d - i);
}

int buf_append_hex(struct buf *b, uint64_t v, unsigned width)
{
    static const char hex[] = "0123456789abcdef";
    char d[64];
    size_t i = sizeof d;
    if (width > sizeof d)
        return -EINVAL;
    do {
        d[--i] = hex[v & 15];
        v >>= 4;
    } while (v);
    while (sizeof d - i < width)
        d[--i] = '0';
    return buf_append(b, d + i, sizeof d - i);
}

int buf_nul(struct buf *b)
{
    int rc = buf_append_byte(b, 0);
    if (rc == 0)
        b->len--;
    return rc;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    /* Longer than the stack buffer: check the cap first, then format again. */
    if ((size_t)n > b->max - b->len)
        return -ENOBUFS;
    char *tmp = malloc((size_t)n + 1);
    if (!tmp)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = buf_append(b, tmp, (size_t)n);
    free(tmp);
    return rc;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
