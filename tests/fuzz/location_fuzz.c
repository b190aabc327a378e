/*
 * libFuzzer target: a sequence of location-table operations decoded from the
 * input (update batches, remove-all, restore, expire, lookups over a small
 * universe of AORs, contacts, instances and Call-IDs), checking invariants after
 * each: the counters agree with an iteration, no AOR exceeds its cap, the total
 * cap holds, lookups are sorted by q, no two bindings of an AOR share an identity
 * ((instance, reg-id) for an outbound one, the contact key otherwise), a refused
 * update changes nothing, and the change hook sees sane events.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "svc/location.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP_AOR 4
#define CAP_TOTAL 12

static size_t iter_count(struct loc_table *t, uint64_t now)
{
    struct loc_iter *it;
    if (loc_iter_new(&it, t, now) < 0)
        abort();
    str a;
    struct loc_binding b;
    size_t n = 0;
    int rc;
    while ((rc = loc_iter_next(it, &a, &b)) == 1)
        n++;
    if (rc < 0)
        abort();
    loc_iter_free(it);
    return n;
}

/* The identity a binding is matched by (see location.h). */
static bool same_binding(const struct loc_binding *a, const struct loc_binding *b)
{
    bool oa = a->instance.len && a->reg_id, ob = b->instance.len && b->reg_id;
    if (oa != ob)
        return false;
    if (oa)
        return a->reg_id == b->reg_id && str_eq(a->instance, b->instance);
    return str_eq(a->contact_key, b->contact_key);
}

static void hook(void *ctx, str aor, enum loc_event ev, const struct loc_binding *b,
                 size_t remaining)
{
    (void)ctx;
    if (aor.len == 0 || b->contact.len == 0 || remaining > CAP_AOR ||
        (unsigned)ev > LOC_EXPIRED)
        abort();
    if ((ev == LOC_ADDED || ev == LOC_UPDATED) && remaining == 0)
        abort();
}

static const char *const aors[] = { "a@x", "A@x", "a@X", "b@x", "c@y" };
static const char *const contacts[] = { "sip:1@h", "sip:2@h", "sip:3@h", "sip:4@h", "sip:5@h" };
static const char *const callids[] = { "c1", "c2" };
static const char *const insts[] = { "", "<urn:uuid:1>", "<urn:uuid:2>" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct loc_table *t;
    struct loc_params p = { .max_per_aor = CAP_AOR, .max_total = CAP_TOTAL };
    if (size > 0 && (data[0] & 8)) /* half the inputs run with the hook */
        p.hook = hook;
    struct arena *ar;
    if (loc_new(&t, &p) < 0 || arena_new(&ar, 0, 0) < 0)
        abort();
    uint64_t now = 1000;
    size_t i = 0;
    while (i + 4 <= size) {
        uint8_t op = data[i], x = data[i + 1], y = data[i + 2], z = data[i + 3];
        i += 4;
        str aor = str_cstr(aors[x % 5]);
        struct loc_binding v[4];
        size_t n = 1 + (op >> 4) % 4;
        for (size_t k = 0; k < n; k++) {
            uint8_t r = (uint8_t)(y + 37 * k);
            v[k] = (struct loc_binding){
                .contact = str_cstr(contacts[r % 5]),
                .call_id = str_cstr(callids[(r >> 3) & 1]),
                .instance = str_cstr(insts[(r >> 4) % 3]),
                .reg_id = (r >> 6) & 1,
                .cseq = z % 8,
                .q = (uint16_t)((r * 97) % 1100),
                .expires_ms = (r & 1) ? 0 : now + 100 + (z % 4) * 100,
            };
        }
        struct loc_binding *before, *after;
        size_t nb, na;
        switch (op & 7) {
        case 0:
        case 1:
        case 2: {
            if (loc_lookup(t, aor, now, ar, &before, &nb) < 0)
                abort();
            size_t total0 = loc_count(t, NULL);
            int rc = loc_update(t, aor, v, n, now, NULL, NULL, NULL);
            if (rc < 0) {
                if (rc != LOC_ERR_ORDER && rc != LOC_ERR_AOR_FULL && rc != LOC_ERR_FULL)
                    abort();
                if (loc_lookup(t, aor, now, ar, &after, &na) < 0 || na != nb)
                    abort(); /* all or nothing */
                if (loc_count(t, NULL) > total0)
                    abort();
            }
            break;
        }
        case 3:
            loc_remove_all(t, aor, (z & 1) ? STR_NULL : str_cstr(callids[z & 2 ? 1 : 0]), z % 8,
                           now);
            break;
        case 4:
            v[0].expires_ms = now + 50;
            loc_restore(t, aor, &v[0], now);
            break;
        case 5:
            now += z;
            loc_expire(t, now, x % 3, ar, NULL, NULL);
            break;
        default:
            now += z % 16;
            break;
        }
        /* invariants */
        size_t naor, total = loc_count(t, &naor);
        if (total > CAP_TOTAL || naor > total)
            abort();
        loc_expire(t, now, 0, NULL, NULL, NULL);
        total = loc_count(t, NULL);
        if (iter_count(t, now) != total)
            abort();
        for (int k = 0; k < 5; k++) {
            if (loc_lookup(t, str_cstr(aors[k]), now, ar, &after, &na) < 0 || na > CAP_AOR)
                abort();
            for (size_t j = 1; j < na; j++)
                if (after[j - 1].q < after[j].q)
                    abort();
            for (size_t j = 0; j < na; j++)
                for (size_t l = j + 1; l < na; l++)
                    if (same_binding(&after[j], &after[l]))
                        abort();
        }
        arena_reset(ar);
    }
    loc_free(t);
    arena_free(ar);
    return 0;
}
