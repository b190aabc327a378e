/*
 * libFuzzer target: the PIDF parser (svc/pidf.c). Any input is parsed; an
 * accepted document must respect the bounds, survive aggregation, and what the
 * writer makes of it must parse again with the same tuples. A refusal must say
 * why in printable ASCII.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/pidf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pidf_doc *d = NULL;
    char why[120];
    int rc = pidf_parse(str_make((const char *)data, size), &d, why, sizeof why);
    if (rc < 0) {
        if (d || !why[0])
            abort();
        for (const char *c = why; *c; c++)
            if (*c < 0x20 || *c > 0x7e)
                abort();
        return 0;
    }
    if (!d || d->ntuples > PIDF_MAX_TUPLES)
        abort();
    struct buf out;
    buf_init(&out, 0);
    const struct pidf_doc *docs[] = { d };
    struct pidf_reg reg = { STR("reg-x"), STR("sip:x@127.0.0.1") };
    if (pidf_aggregate(&out, d->entity, docs, 1, &reg, 1) < 0)
        abort();
    struct pidf_doc *back = NULL;
    if (pidf_parse(buf_str(&out), &back, why, sizeof why) < 0)
        abort(); /* our own output must be valid */
    size_t want = d->ntuples + 1;
    for (size_t i = 0; i < d->ntuples; i++)
        if (d->tuples[i].contact.len && str_caseeq(d->tuples[i].contact, reg.contact))
            want--;
    if (back->ntuples != (want ? want : 1) && !(want > PIDF_MAX_TUPLES))
        abort();
    for (size_t i = 0; i < d->ntuples; i++)
        if (!str_eq(back->tuples[i].id, d->tuples[i].id) ||
            back->tuples[i].basic != d->tuples[i].basic)
            abort();
    pidf_free(back);
    pidf_free(d);
    buf_free(&out);
    return 0;
}
