/*
 * buf — a growable byte buffer with a hard cap. The cap (max) is set by
 * whoever owns the buffer from configuration; data arriving from outside can
 * never raise it: an append past it fails with -ENOBUFS and changes nothing.
 */
#ifndef RTCD_BASE_BUF_H
#define RTCD_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

struct buf {
    uint8_t *data;
    size_t len, cap, max;
};

/* An empty buffer that may grow to max bytes (0 = SIZE_MAX). Allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* Frees the storage; the buffer is empty and reusable (same max) afterwards. */
void buf_free(struct buf *b);
/* Forgets the content, keeps the storage. */
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
}

/* Makes room for extra more bytes. 0, -ENOBUFS past max, -ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);
/* Appends n bytes. 0, -ENOBUFS past max (nothing appended), -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, str s);
int buf_append_byte(struct buf *b, uint8_t c);
/* Appends v in decimal (the hot paths' alternative to buf_printf "%u"). */
int buf_append_u64(struct buf *b, uint64_t v);
/* Appends v in lower-case hex, zero-padded to width digits (0: as many as needed). */
int buf_append_hex(struct buf *b, uint64_t v, unsigned width);
/* Ends the content with a NUL that len does not count (for C-string users). 0, -ENOBUFS, -ENOMEM. */
int buf_nul(struct buf *b);
/* A buffer over caller storage of cap bytes: it never reallocates (max = cap); never buf_free it. */
static inline struct buf buf_over(void *p, size_t cap)
{
    return (struct buf){ (uint8_t *)p, 0, cap, cap };
}
/* printf-style append. 0, -ENOBUFS, -ENOMEM, -EINVAL (format error). */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (all of them when n >= len). */
void buf_consume(struct buf *b, size_t n);
/* The content as a slice, borrowed until the next change to b. */
static inline str buf_str(const struct buf *b)
{
    return str_make((const char *)b->data, b->len);
}

#endif
