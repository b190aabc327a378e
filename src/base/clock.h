/*
 * clock — monotonic time for timers and measurements, wall time for logs and
 * stored timestamps. Protocol cores never call these directly: they take "now"
 * from their caller so that unit tests can drive time (STYLE.md).
 */
#ifndef RTCD_BASE_CLOCK_H
#define RTCD_BASE_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds / microseconds since an arbitrary start. */
uint64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);
/* Wall-clock milliseconds since the Unix epoch (UTC). */
uint64_t clock_wall_ms(void);

/*
 * An injectable clock: protocol cores hold one of these. The default reads the
 * monotonic clock; tests set now_ms to their own function.
 */
struct clock_src {
    uint64_t (*now_ms)(void *ctx);
    void *ctx;
};
extern const struct clock_src clock_system;

static inline uint64_t clock_now(const struct clock_src *c)
{
    return c->now_ms(c->ctx);
}

#endif
